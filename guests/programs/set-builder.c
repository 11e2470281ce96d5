/* set-builder: verifies N receipts by composition and commits the root of the SHA-256 Merkle
 * tree of their claim digests, so one verified receipt of this program covers a whole batch of
 * proof-market fulfilments.
 *
 * Input (little-endian): u32 N (1..T_MAX_ASSUMPTIONS), then N times: the program's 32-byte
 * image id, u32 journal length (at most 64 KiB), the journal.
 * Journal: the 32-byte root. Leaves are claim digests (risc0's ReceiptClaim::ok of image id and
 * journal digest), in input order, not hashed again; an inner node is sha256(min(a, b) ||
 * max(a, b)) comparing the children as big-endian numbers; a level with an odd count carries its
 * last node up unchanged; a one-leaf tree's root is the leaf. The market's contracts
 * (MerkleProof.sol) and the tiffin-market crate build the same tree.
 * Exit code 2: malformed input. */
#include "tiffin.h"

#define MAX_JOURNAL (64 * 1024)

static uint8_t journal[MAX_JOURNAL];
static uint8_t nodes[T_MAX_ASSUMPTIONS][32];

__attribute__((noreturn)) static void refuse(const char *why) {
    t_puts_err(why);
    t_halt(2);
}

static uint32_t read_u32(void) {
    uint8_t b[4];
    if (t_read_exact(b, 4) != 4) refuse("set-builder: input truncated");
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Big-endian comparison of two 32-byte values: negative, zero or positive. */
static int compare(const uint8_t *a, const uint8_t *b) {
    for (int i = 0; i < 32; i++) {
        if (a[i] != b[i]) return (int)a[i] - (int)b[i];
    }
    return 0;
}

static void hash_pair(const uint8_t *a, const uint8_t *b, uint8_t out[32]) {
    const uint8_t *low = a, *high = b;
    if (compare(a, b) > 0) {
        low = b;
        high = a;
    }
    uint8_t both[64];
    memcpy(both, low, 32);
    memcpy(both + 32, high, 32);
    t_sha256(both, 64, out);
}

int main(void) {
    uint32_t count = read_u32();
    if (count == 0 || count > T_MAX_ASSUMPTIONS) refuse("set-builder: claim count out of range");
    for (uint32_t i = 0; i < count; i++) {
        uint8_t image_id[32];
        if (t_read_exact(image_id, 32) != 32) refuse("set-builder: input truncated");
        uint32_t length = read_u32();
        if (length > MAX_JOURNAL) refuse("set-builder: journal over 64 KiB");
        if (t_read_exact(journal, length) != length) refuse("set-builder: input truncated");
        uint8_t digest[32];
        t_sha256(journal, length, digest);
        t_claim_digest(image_id, digest, nodes[i]);
        t_verify_claim(nodes[i]);
    }
    uint8_t extra;
    if (t_read(&extra, 1) != 0) refuse("set-builder: bytes after the last claim");
    /* Level by level, in place: node i of the next level comes from nodes 2i and 2i + 1. */
    for (uint32_t n = count; n > 1; n = (n + 1) / 2) {
        for (uint32_t i = 0; i < n / 2; i++) hash_pair(nodes[2 * i], nodes[2 * i + 1], nodes[i]);
        if (n % 2 == 1) memcpy(nodes[n / 2], nodes[n - 1], 32);
    }
    t_commit(nodes[0], 32);
    return 0;
}
