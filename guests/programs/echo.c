/* echo: commits its whole input to the journal, streaming it in chunks. */
#include "tiffin.h"

static uint8_t chunk[4096];

int main(void) {
    size_t got;
    while ((got = t_read(chunk, sizeof(chunk))) > 0) t_commit(chunk, got);
    return 0;
}
