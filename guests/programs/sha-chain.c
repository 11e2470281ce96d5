/* sha-chain: reads (u32 LE rounds, bytes) and commits sha256 applied `rounds` times
 * (the first round over the bytes, each later one over the previous digest). */
#include "tiffin.h"

static uint8_t chunk[4096];

int main(void) {
    uint8_t in[4] = {0, 0, 0, 0};
    if (t_read_exact(in, 4) != 4) {
        t_puts_err("sha-chain: input must start with a little-endian u32 round count\n");
        return 2;
    }
    uint32_t rounds = in[0] | (in[1] << 8) | (in[2] << 16) | ((uint32_t)in[3] << 24);
    uint8_t digest[32];
    t_sha256_ctx c;
    t_sha256_init(&c);
    size_t got;
    while ((got = t_read(chunk, sizeof(chunk))) > 0) t_sha256_update(&c, chunk, got);
    t_sha256_final(&c, digest);
    if (rounds == 0) {
        t_puts_err("sha-chain: rounds must be at least 1\n");
        return 2;
    }
    for (uint32_t i = 1; i < rounds; i++) t_sha256(digest, 32, digest);
    t_commit(digest, 32);
    return 0;
}
