/* The part of <stdlib.h> that wit-bindgen's C bindings and health.c use,
 * for a freestanding wasm32 build (no libc, no WASI). Implemented in
 * tiny_libc.c. */
#ifndef TINY_LIBC_STDLIB_H
#define TINY_LIBC_STDLIB_H
#include <stddef.h>

void *malloc(size_t size);
void *realloc(void *ptr, size_t size);
void free(void *ptr);
_Noreturn void abort(void);

#endif
