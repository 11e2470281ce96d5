/* Tiffin guest SDK implementation. */
#include "tiffin.h"

#define ECALL_HALT 0
#define ECALL_SOFTWARE 2
#define ECALL_SHA 3
#define SYSCALL_READ 12
#define SYSCALL_VERIFY_INTEGRITY 14
#define SYSCALL_WRITE 16

static const char NAME_READ[] = "risc0_zkvm_platform::syscall::nr::SYS_READ";
static const char NAME_WRITE[] = "risc0_zkvm_platform::syscall::nr::SYS_WRITE";
static const char NAME_VERIFY[] = "risc0_zkvm_platform::syscall::nr::SYS_VERIFY_INTEGRITY";

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

size_t strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* Host syscall with two or three arguments; returns a0. */
static uint32_t syscall3(uint32_t nr, const char *name, void *from_host, uint32_t from_host_len,
                         uint32_t a3, uint32_t a4, uint32_t a5) {
    register uint32_t t0 __asm__("t0") = ECALL_SOFTWARE;
    register uint32_t t6 __asm__("t6") = nr;
    register uint32_t r0 __asm__("a0") = (uint32_t)from_host;
    register uint32_t r1 __asm__("a1") = from_host_len;
    register uint32_t r2 __asm__("a2") = (uint32_t)name;
    register uint32_t r3 __asm__("a3") = a3;
    register uint32_t r4 __asm__("a4") = a4;
    register uint32_t r5 __asm__("a5") = a5;
    __asm__ volatile("ecall"
                     : "+r"(r0), "+r"(r1)
                     : "r"(t0), "r"(t6), "r"(r2), "r"(r3), "r"(r4), "r"(r5)
                     : "memory");
    return r0;
}

/* Word-aligned bounce buffer: the host writes whole words into from_host. */
static uint32_t read_buf[1024];

size_t t_read(void *buf, size_t n) {
    if (n > sizeof(read_buf)) n = sizeof(read_buf);
    uint32_t got = syscall3(SYSCALL_READ, NAME_READ, read_buf, n, T_FD_STDIN, n, 0);
    if (got > n) got = n;
    memcpy(buf, read_buf, got);
    return got;
}

size_t t_read_exact(void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t got = t_read((uint8_t *)buf + done, n - done);
        if (got == 0) break;
        done += got;
    }
    return done;
}

static void write_fd(uint32_t fd, const void *buf, size_t n) {
    syscall3(SYSCALL_WRITE, NAME_WRITE, 0, 0, fd, (uint32_t)buf, n);
}

static t_sha256_ctx journal_hash;
static int journal_started;

void t_commit(const void *buf, size_t n) {
    if (!journal_started) {
        t_sha256_init(&journal_hash);
        journal_started = 1;
    }
    t_sha256_update(&journal_hash, buf, n);
    write_fd(T_FD_JOURNAL, buf, n);
}

void t_stdout(const void *buf, size_t n) { write_fd(T_FD_STDOUT, buf, n); }
void t_stderr(const void *buf, size_t n) { write_fd(T_FD_STDERR, buf, n); }
void t_puts_err(const char *s) { t_stderr(s, strlen(s)); }

static uint32_t bswap32(uint32_t x) {
    return (x >> 24) | ((x >> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24);
}

static const uint32_t SHA256_IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

void t_sha256_init(t_sha256_ctx *c) {
    for (int i = 0; i < 8; i++) c->state[i] = bswap32(SHA256_IV[i]);
    c->used = 0;
    c->total = 0;
}

/* Compresses `count` 64-byte word-aligned blocks into the state. */
static void compress(uint32_t state[8], const uint32_t *blocks, uint32_t count) {
    register uint32_t t0 __asm__("t0") = ECALL_SHA;
    register uint32_t a0 __asm__("a0") = (uint32_t)state;
    register uint32_t a1 __asm__("a1") = (uint32_t)state;
    register uint32_t a2 __asm__("a2") = (uint32_t)blocks;
    register uint32_t a3 __asm__("a3") = (uint32_t)blocks + 32;
    register uint32_t a4 __asm__("a4") = count;
    __asm__ volatile("ecall" : : "r"(t0), "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(a4) : "memory");
}

void t_sha256_update(t_sha256_ctx *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->total += n;
    while (n > 0) {
        if (c->used == 0 && n >= 64 && ((uint32_t)p & 3) == 0) {
            uint32_t blocks = n / 64;
            if (blocks > 1000) blocks = 1000;
            compress(c->state, (const uint32_t *)p, blocks);
            p += blocks * 64;
            n -= blocks * 64;
            continue;
        }
        uint32_t take = 64 - c->used;
        if (take > n) take = n;
        memcpy((uint8_t *)c->block + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used == 64) {
            compress(c->state, c->block, 1);
            c->used = 0;
        }
    }
}

void t_sha256_final(t_sha256_ctx *c, uint8_t out[32]) {
    /* Padding written into the block in place (one 0x80 byte, zeros, the bit length big-endian):
     * feeding it through t_sha256_update a byte at a time cost ~2,000 cycles per hash. */
    uint8_t *block = (uint8_t *)c->block;
    uint64_t bits = c->total * 8;
    block[c->used++] = 0x80;
    if (c->used > 56) {
        memset(block + c->used, 0, 64 - c->used);
        compress(c->state, c->block, 1);
        c->used = 0;
    }
    memset(block + c->used, 0, 56 - c->used);
    for (int i = 0; i < 8; i++) block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(c->state, c->block, 1);
    c->used = 0;
    memcpy(out, c->state, 32);
}

void t_sha256(const void *data, size_t n, uint8_t out[32]) {
    t_sha256_ctx c;
    t_sha256_init(&c);
    t_sha256_update(&c, data, n);
    t_sha256_final(&c, out);
}

/* risc0's tagged struct hash:
 * sha256(sha256(tag) || down[0] || ... || down[n-1] || data words (LE) || u16le(n)). */
static void tagged_struct(const char *tag, const uint8_t (*down)[32], uint32_t ndown,
                          const uint32_t *data, uint32_t ndata, uint8_t out[32]) {
    /* The few tags are string literals: each one's digest is computed once and remembered. */
    static const char *tags[8];
    static uint8_t tag_digests[8][32];
    uint8_t *tag_digest = 0;
    for (int i = 0; i < 8 && !tag_digest; i++) {
        if (tags[i] == tag) {
            tag_digest = tag_digests[i];
        } else if (!tags[i]) {
            t_sha256(tag, strlen(tag), tag_digests[i]);
            tags[i] = tag;
            tag_digest = tag_digests[i];
        }
    }
    uint8_t uncached[32];
    if (!tag_digest) {
        t_sha256(tag, strlen(tag), uncached);
        tag_digest = uncached;
    }
    t_sha256_ctx c;
    t_sha256_init(&c);
    t_sha256_update(&c, tag_digest, 32);
    for (uint32_t i = 0; i < ndown; i++) t_sha256_update(&c, down[i], 32);
    for (uint32_t i = 0; i < ndata; i++) {
        uint8_t w[4] = {(uint8_t)data[i], (uint8_t)(data[i] >> 8), (uint8_t)(data[i] >> 16),
                        (uint8_t)(data[i] >> 24)};
        t_sha256_update(&c, w, 4);
    }
    uint8_t count[2] = {(uint8_t)ndown, (uint8_t)(ndown >> 8)};
    t_sha256_update(&c, count, 2);
    t_sha256_final(&c, out);
}

/* Digest of the guest's assumption list: zero when empty, each t_verify conses one on. */
static uint8_t assumptions_digest[32];
static uint32_t assumption_count;

void t_claim_digest(const uint8_t image_id[32], const uint8_t journal_digest[32],
                    uint8_t out[32]) {
    /* ReceiptClaim::ok(image_id, journal):
     * struct "risc0.ReceiptClaim" [input = 0, pre = image_id, post, output] data [0, 0]. */
    uint8_t fields[4][32];
    memset(fields[0], 0, 32); /* no input */
    memcpy(fields[1], image_id, 32);
    {
        uint8_t root[1][32];
        uint32_t pc = 0;
        memset(root[0], 0, 32);
        tagged_struct("risc0.SystemState", (const uint8_t(*)[32])root, 1, &pc, 1, fields[2]);
    }
    {
        uint8_t output[2][32];
        memcpy(output[0], journal_digest, 32);
        memset(output[1], 0, 32); /* the claimed receipt is unconditional */
        tagged_struct("risc0.Output", (const uint8_t(*)[32])output, 2, 0, 0, fields[3]);
    }
    uint32_t exit_pair[2] = {0, 0};
    tagged_struct("risc0.ReceiptClaim", (const uint8_t(*)[32])fields, 4, exit_pair, 2, out);
}

void t_verify(const uint8_t image_id[32], const void *journal, size_t n) {
    uint8_t journal_digest[32], claim[32];
    t_sha256(journal, n, journal_digest);
    t_claim_digest(image_id, journal_digest, claim);
    t_verify_claim(claim);
}

void t_verify_claim(const uint8_t claim[32]) {
    if (assumption_count >= T_MAX_ASSUMPTIONS) {
        t_puts_err("t_verify: too many assumptions");
        t_halt(101);
    }
    static uint32_t to_host[16]; /* claim digest || control root (zero: same as ours) */
    memcpy(to_host, claim, 32);
    memset(&to_host[8], 0, 32);
    uint32_t rc = syscall3(SYSCALL_VERIFY_INTEGRITY, NAME_VERIFY, 0, 0, (uint32_t)to_host, 64, 0);
    if (rc != 0) {
        t_puts_err("t_verify: the host refused the assumption");
        t_halt(101);
    }
    /* assumptions = struct "risc0.Assumptions" [assumption, previous list]; an assumption is
     * struct "risc0.Assumption" [claim, control root]. */
    uint8_t pair[2][32];
    tagged_struct("risc0.Assumption", (const uint8_t(*)[32])to_host, 2, 0, 0, pair[0]);
    memcpy(pair[1], assumptions_digest, 32);
    tagged_struct("risc0.Assumptions", (const uint8_t(*)[32])pair, 2, 0, 0, assumptions_digest);
    assumption_count++;
}

/* output = struct "risc0.Output" [sha256(journal), assumptions digest]. */
__attribute__((noreturn)) void t_halt(int exit_code) {
    static uint32_t output[8];
    uint8_t fields[2][32];
    if (!journal_started) {
        t_sha256_init(&journal_hash);
        journal_started = 1;
    }
    t_sha256_final(&journal_hash, fields[0]);
    memcpy(fields[1], assumptions_digest, 32);
    tagged_struct("risc0.Output", (const uint8_t(*)[32])fields, 2, 0, 0, (uint8_t *)output);
    register uint32_t t0 __asm__("t0") = ECALL_HALT;
    register uint32_t a0 __asm__("a0") = ((uint32_t)(exit_code & 0xff)) << 8;
    register uint32_t a1 __asm__("a1") = (uint32_t)output;
    __asm__ volatile("ecall" : : "r"(t0), "r"(a0), "r"(a1) : "memory");
    for (;;) {
    }
}
