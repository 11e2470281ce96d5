/* compose: verifies another guest's receipt inside this one (composition).
 * Input: the other program's 32-byte image id, then its whole journal. Commits the same bytes,
 * so this receipt says "program <id> ran successfully and output <journal>" once the cluster
 * resolves the assumption with that program's receipt. */
#include "tiffin.h"

static uint8_t input[64 * 1024];

int main(void) {
    size_t n = t_read_exact(input, sizeof(input));
    if (n < 32) {
        t_puts_err("compose: input must start with a 32-byte image id");
        return 2;
    }
    if (n == sizeof(input) && t_read(input, 1) != 0) {
        t_puts_err("compose: journal over 64 KiB");
        return 2;
    }
    t_verify(input, input + 32, n - 32);
    t_commit(input, n);
    return 0;
}
