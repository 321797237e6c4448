/* A health policy for the Orbit storage host, in C (wit-bindgen's C
 * bindings, Debian's clang, no libc and no WASI).
 *
 * World `health-policy` of `wit/worlds.wit`. Ready when the backend is open,
 * the host's canary write+read succeeded, and nobody has drained this pod for
 * maintenance: an operator drains it with
 *
 *     curl -X PUT --data-binary 'kernel upgrade' localhost:8080/v1/kv/maintenance
 *
 * and undrains it with `curl -X DELETE localhost:8080/v1/kv/maintenance`. The
 * key is read through the host's `store` import; the decision is logged
 * through the host's `log` import. The same policy as examples/python-health.
 *
 * Ownership follows wit-bindgen's C conventions: the arguments of an export
 * belong to the callee (freed at the end of `evaluate`), the verdict's
 * strings are heap memory that the generated post-return function frees, and
 * results of imports belong to the caller. */
#include <stdlib.h>
#include <string.h>

#include "health_policy.h"

/* ---- a growable byte string ------------------------------------------- */

typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} buf_t;

static void buf_bytes(buf_t *b, const uint8_t *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->ptr = realloc(b->ptr, cap);
        if (!b->ptr) {
            abort();
        }
        b->cap = cap;
    }
    memcpy(b->ptr + b->len, s, n);
    b->len += n;
}

static void buf_str(buf_t *b, const char *s) {
    buf_bytes(b, (const uint8_t *)s, strlen(s));
}

static void buf_u64(buf_t *b, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_bytes(b, (const uint8_t *)digits + sizeof digits - n, n);
}

/* Appends `s` with every byte sequence that is not UTF-8 replaced by U+FFFD:
 * component-model strings must be valid UTF-8, store values need not be. */
static void buf_utf8_lossy(buf_t *b, const uint8_t *s, size_t n) {
    static const uint8_t replacement[] = {0xEF, 0xBF, 0xBD};
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                                : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) {
            ok = (s[i + k] & 0xC0) == 0x80;
        }
        if (ok && len == 3) { /* no overlong forms, no surrogates */
            ok = !(c == 0xE0 && s[i + 1] < 0xA0) && !(c == 0xED && s[i + 1] >= 0xA0);
        }
        if (ok && len == 4) { /* no overlong forms, nothing above U+10FFFF */
            ok = !(c == 0xF0 && s[i + 1] < 0x90) && !(c == 0xF4 && s[i + 1] >= 0x90);
        }
        if (ok) {
            buf_bytes(b, s + i, len);
            i += len;
        } else {
            buf_bytes(b, replacement, sizeof replacement);
            i++;
        }
    }
}

/* Moves the buffer into a bindings string (heap memory, or empty). */
static health_policy_string_t buf_take(buf_t *b) {
    health_policy_string_t s = {b->ptr, b->len};
    if (!b->len) {
        free(b->ptr);
        s.ptr = NULL;
    }
    *b = (buf_t){0};
    return s;
}

static void push_reason(health_policy_list_string_t *reasons, buf_t *reason) {
    reasons->ptr = realloc(reasons->ptr, (reasons->len + 1) * sizeof *reasons->ptr);
    if (!reasons->ptr) {
        abort();
    }
    reasons->ptr[reasons->len++] = buf_take(reason);
}

static void describe_store_error(buf_t *b, const orbit_storage_store_store_error_t *e) {
    switch (e->tag) {
    case ORBIT_STORAGE_STORE_STORE_ERROR_CONFLICT:
        buf_str(b, "conflict");
        break;
    case ORBIT_STORAGE_STORE_STORE_ERROR_LIMIT:
        buf_str(b, "limit: ");
        buf_utf8_lossy(b, e->val.limit.ptr, e->val.limit.len);
        break;
    case ORBIT_STORAGE_STORE_STORE_ERROR_INVALID:
        buf_str(b, "invalid: ");
        buf_utf8_lossy(b, e->val.invalid.ptr, e->val.invalid.len);
        break;
    default:
        buf_str(b, "unavailable: ");
        buf_utf8_lossy(b, e->val.unavailable.ptr, e->val.unavailable.len);
        break;
    }
}

/* ---- the policy ----------------------------------------------------------- */

void exports_orbit_storage_health_evaluate(exports_orbit_storage_health_deployment_context_t *context,
                                           exports_orbit_storage_health_health_report_t *report,
                                           exports_orbit_storage_health_health_verdict_t *ret) {
    health_policy_list_string_t reasons = {0};
    buf_t reason = {0};
    bool ready = true;

    if (!report->backend_open) {
        ready = false;
        buf_str(&reason, "c policy: the backend is not open");
        push_reason(&reasons, &reason);
    }
    if (!report->canary.ok) {
        ready = false;
        buf_str(&reason, "c policy: canary failed: ");
        if (report->canary.error.is_some) {
            buf_utf8_lossy(&reason, report->canary.error.val.ptr, report->canary.error.val.len);
        } else {
            buf_str(&reason, "no error message");
        }
        push_reason(&reasons, &reason);
    }

    static const char key[] = "maintenance";
    health_policy_list_u8_t maintenance = {(uint8_t *)key, sizeof key - 1};
    orbit_storage_store_option_entry_t drained = {0};
    orbit_storage_store_store_error_t error;
    if (!orbit_storage_store_get(&maintenance, &drained, &error)) {
        drained.is_some = false;
        buf_str(&reason, "c policy: cannot read the maintenance switch: ");
        describe_store_error(&reason, &error);
        push_reason(&reasons, &reason);
        orbit_storage_store_store_error_free(&error);
    }
    if (drained.is_some) {
        ready = false;
        buf_str(&reason, "c policy: drained for maintenance: ");
        buf_utf8_lossy(&reason, drained.val.value.ptr, drained.val.value.len);
        push_reason(&reasons, &reason);
        orbit_storage_store_option_entry_free(&drained);
    }

    if (ready) {
        buf_str(&reason, "c policy: backend open, canary ok in ");
        buf_u64(&reason, report->canary.latency_us);
        buf_str(&reason, " us, not drained");
        push_reason(&reasons, &reason);
    }

    buf_t line = {0};
    for (size_t i = 0; i < reasons.len; i++) {
        if (i) {
            buf_str(&line, "; ");
        }
        buf_bytes(&line, reasons.ptr[i].ptr, reasons.ptr[i].len);
    }
    health_policy_string_t message = buf_take(&line);
    orbit_storage_log_log(ready ? ORBIT_STORAGE_LOG_LEVEL_INFO : ORBIT_STORAGE_LOG_LEVEL_WARN, &message);
    health_policy_string_free(&message);

    ret->live = true;
    ret->ready = ready;
    ret->status = ready ? ORBIT_STORAGE_TYPES_HEALTH_STATUS_OK : ORBIT_STORAGE_TYPES_HEALTH_STATUS_DEGRADED;
    ret->reasons = reasons;

    exports_orbit_storage_health_deployment_context_free(context);
    exports_orbit_storage_health_health_report_free(report);
}
