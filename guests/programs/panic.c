/* panic: writes a message to stderr and halts with a non-zero exit code, the way a
 * guest signals failure. The message includes the input (if any) so tests can match it. */
#include "tiffin.h"

static uint8_t chunk[256];

int main(void) {
    t_puts_err("guest panicked: deliberate failure");
    size_t got = t_read(chunk, sizeof(chunk));
    if (got > 0) {
        t_puts_err(": ");
        t_stderr(chunk, got);
    }
    t_puts_err("\n");
    return 101;
}
