#include <malloc.h>
#include "heap_in_use.h"

size_t heap_in_use(void) {
    return mallinfo2().uordblks;
}
