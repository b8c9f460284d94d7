#ifndef HEAP_IN_USE_H
#define HEAP_IN_USE_H
#include <stddef.h>

/// Bytes the process has allocated and not freed (glibc's mallinfo2().uordblks).
size_t heap_in_use(void);

#endif
