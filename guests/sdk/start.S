# Entry point of a Tiffin C guest. The v1compat kernel does not set up the user
# stack, so we do: sp = STACK_TOP (0x00200400), gp = __global_pointer$.
    .section .text.init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    li sp, 0x00200400
    call main
    # main's return value is the exit code; t_halt never returns.
    call t_halt
1:  j 1b
