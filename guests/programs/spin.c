/* spin: reads a little-endian u32 N and burns about N cycles, then commits
 * (N, checksum) as two little-endian u32s. Tests choose N to get a number of segments. */
#include "tiffin.h"

int main(void) {
    uint8_t in[4] = {0, 0, 0, 0};
    if (t_read_exact(in, 4) != 4) {
        t_puts_err("spin: input must be a little-endian u32 cycle count\n");
        return 2;
    }
    uint32_t n = in[0] | (in[1] << 8) | (in[2] << 16) | ((uint32_t)in[3] << 24);
    /* Each iteration compiles to 9 instructions (three xorshift steps, the sum, the counter
     * and the branch) — 9 cycles — so n/9 iterations burn about n cycles. The checksum
     * depends on every step, so the compiler cannot fold the loop away. */
    uint32_t x = 0x9e3779b9u, sum = 0;
    for (uint32_t i = n / 9; i != 0; i--) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        sum += x;
    }
    uint8_t out[8];
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(n >> (8 * i));
        out[4 + i] = (uint8_t)(sum >> (8 * i));
    }
    t_commit(out, 8);
    return 0;
}
