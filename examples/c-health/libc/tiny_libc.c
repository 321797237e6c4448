/* A tiny C library for a freestanding wasm32 module: the allocator behind
 * wit-bindgen's `cabi_realloc` and the few string functions the bindings
 * call. No WASI imports: memory comes from `memory.grow`.
 *
 * The allocator keeps one free list per power-of-two block size (32 bytes
 * to 2 GiB, a 16-byte header included), so the blocks a call frees are
 * reused by the next call and an instance the host reuses does not grow
 * without bound. Payloads are 16-byte aligned (the canonical ABI needs 8). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 65536u
#define HEADER 16u
#define MIN_SHIFT 5u  /* 32-byte blocks */
#define MAX_SHIFT 31u /* 2 GiB blocks */

extern unsigned char __heap_base; /* defined by wasm-ld */

static uintptr_t heap_top, heap_end;
static void *free_lists[MAX_SHIFT + 1];

static unsigned shift_for(size_t size) {
    unsigned shift = MIN_SHIFT;
    while (shift <= MAX_SHIFT && ((size_t)1 << shift) - HEADER < size) {
        shift++;
    }
    return shift;
}

void *malloc(size_t size) {
    unsigned shift = shift_for(size ? size : 1);
    if (shift > MAX_SHIFT) {
        return NULL;
    }
    uint8_t *block = free_lists[shift];
    if (block) {
        free_lists[shift] = *(void **)(block + HEADER);
    } else {
        if (!heap_top) {
            heap_top = ((uintptr_t)&__heap_base + HEADER - 1) & ~(uintptr_t)(HEADER - 1);
            heap_end = (uintptr_t)__builtin_wasm_memory_size(0) * PAGE;
        }
        size_t need = (size_t)1 << shift;
        if (heap_end - heap_top < need) {
            size_t pages = (need - (heap_end - heap_top) + PAGE - 1) / PAGE;
            if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) {
                return NULL;
            }
            heap_end += pages * PAGE;
        }
        block = (uint8_t *)heap_top;
        heap_top += need;
    }
    *(uint32_t *)block = shift;
    return block + HEADER;
}

void free(void *ptr) {
    if (!ptr) {
        return;
    }
    uint8_t *block = (uint8_t *)ptr - HEADER;
    unsigned shift = *(uint32_t *)block;
    *(void **)ptr = free_lists[shift];
    free_lists[shift] = block;
}

void *realloc(void *ptr, size_t size) {
    if (!ptr) {
        return malloc(size);
    }
    size_t capacity = ((size_t)1 << *(uint32_t *)((uint8_t *)ptr - HEADER)) - HEADER;
    if (size <= capacity) {
        return ptr;
    }
    void *bigger = malloc(size);
    if (bigger) {
        memcpy(bigger, ptr, capacity);
        free(ptr);
    }
    return bigger;
}

_Noreturn void abort(void) {
    __builtin_trap();
}

/* Compiled with -ffreestanding (implies -fno-builtin), so clang does not
 * turn these loops back into calls to themselves. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d < s) {
        while (n--) {
            *d++ = *s++;
        }
    } else {
        while (n--) {
            d[n] = s[n];
        }
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = dst;
    while (n--) {
        *d++ = (uint8_t)c;
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++) {
        if (*x != *y) {
            return *x - *y;
        }
    }
    return 0;
}

size_t strlen(const char *s) {
    const char *p = s;
    while (*p) {
        p++;
    }
    return (size_t)(p - s);
}
