/* The part of <string.h> that wit-bindgen's C bindings and health.c use (and
 * that clang may call for struct copies), for a freestanding wasm32 build.
 * Implemented in tiny_libc.c. */
#ifndef TINY_LIBC_STRING_H
#define TINY_LIBC_STRING_H
#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
