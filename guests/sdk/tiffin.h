/* Tiffin guest SDK: the smallest useful ABI for RISC Zero guests written in C.
 * See docs/guests.md, "The ABI underneath", for the ecall conventions this implements. */
#ifndef TIFFIN_GUEST_H
#define TIFFIN_GUEST_H

#include <stddef.h>
#include <stdint.h>

#define T_FD_STDIN 0
#define T_FD_STDOUT 1
#define T_FD_STDERR 2
#define T_FD_JOURNAL 3

/* Reads up to n bytes of the guest input; returns the count, 0 at end of input. */
size_t t_read(void *buf, size_t n);
/* Reads exactly n bytes unless input ends first; returns the count read. */
size_t t_read_exact(void *buf, size_t n);
/* Appends bytes to the journal (public output). The SDK hashes them for the output digest. */
void t_commit(const void *buf, size_t n);
/* Writes to the guest's stdout / stderr (host-side logs, not part of the proof). */
void t_stdout(const void *buf, size_t n);
void t_stderr(const void *buf, size_t n);
void t_puts_err(const char *s);

/* SHA-256 through the accelerator ecall. */
typedef struct {
    uint32_t state[8];    /* big-endian hash words in memory order */
    uint32_t block[16];   /* pending partial block */
    uint32_t used;        /* bytes in block */
    uint64_t total;       /* bytes hashed */
} t_sha256_ctx;
void t_sha256_init(t_sha256_ctx *c);
void t_sha256_update(t_sha256_ctx *c, const void *data, size_t n);
void t_sha256_final(t_sha256_ctx *c, uint8_t out[32]);
void t_sha256(const void *data, size_t n, uint8_t out[32]);

/* Composition: asks the host to prove that program `image_id` (32 bytes, the digest as risc0
 * prints it) ran to a successful halt with this journal, and records that claim as an
 * assumption of this guest's receipt (the host resolves it with the matching receipt). Only
 * returns if the host holds such a receipt. Call before t_halt; at most T_MAX_ASSUMPTIONS. */
#define T_MAX_ASSUMPTIONS 256
void t_verify(const uint8_t image_id[32], const void *journal, size_t n);

/* The digest of the claim "program `image_id` halted with exit code 0, read no input, made no
 * unresolved assumptions and committed a journal of SHA-256 `journal_digest`" (risc0's
 * ReceiptClaim::ok): what t_verify asks the host for, and what the proof market's contracts
 * and Merkle batches call a claim digest. */
void t_claim_digest(const uint8_t image_id[32], const uint8_t journal_digest[32],
                    uint8_t out[32]);
/* t_verify for a claim digest already computed with t_claim_digest. */
void t_verify_claim(const uint8_t claim[32]);

/* Ends the guest: exit code 0 is success, anything else is a guest failure ("panic").
 * Computes the output digest over the journal committed so far. */
__attribute__((noreturn)) void t_halt(int exit_code);

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
size_t strlen(const char *s);

#endif
