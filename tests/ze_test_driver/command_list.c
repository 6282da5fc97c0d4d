/* command_list.c — regular lists record commands (kernel arguments and sizes captured at
 * append, as Level Zero specifies) and run when a queue executes them; immediate lists run
 * each command as it is appended, which counts as one submission. Events are not offered:
 * appends that pass any are refused, so a caller relying on them finds out. */
#include "ze_test_driver.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t launches, peer_copies;

uint64_t exo_ze_test_driver_launches(void) { return atomic_load(&launches); }
uint64_t exo_ze_test_driver_peer_copies(void) { return atomic_load(&peer_copies); }

static bool list_valid(ze_command_list_handle_t l) { return l && l->magic == TD_LIST_MAGIC; }

static ze_result_t create(ze_context_handle_t context, ze_device_handle_t device, bool immediate,
                          ze_command_list_handle_t *out) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!td_context_valid(context) || !td_device_valid(device)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!out) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    ze_command_list_handle_t l = calloc(1, sizeof *l);
    if (!l) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    l->magic = TD_LIST_MAGIC;
    l->context = context;
    l->device = device;
    l->immediate = immediate;
    pthread_mutex_lock(&td_global.lock);
    context->n_live_objects++;
    pthread_mutex_unlock(&td_global.lock);
    *out = l;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeCommandListCreate(ze_context_handle_t context, ze_device_handle_t device,
                                              const ze_command_list_desc_t *desc, ze_command_list_handle_t *out) {
    if (!desc) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_COMMAND_LIST_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (desc->commandQueueGroupOrdinal != 0) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    return create(context, device, false, out);
}

ze_result_t ZE_APICALL td_zeCommandListCreateImmediate(ze_context_handle_t context, ze_device_handle_t device,
                                                       const ze_command_queue_desc_t *desc,
                                                       ze_command_list_handle_t *out) {
    if (!desc) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (desc->ordinal != 0 || desc->index != 0) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    return create(context, device, true, out);
}

static void clear(ze_command_list_handle_t l) {
    for (uint32_t i = 0; i < l->n_commands; i++) free(l->commands[i].args);
    l->n_commands = 0;
}

ze_result_t ZE_APICALL td_zeCommandListDestroy(ze_command_list_handle_t list) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!list_valid(list)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    clear(list);
    free(list->commands);
    pthread_mutex_lock(&td_global.lock);
    list->context->n_live_objects--;
    pthread_mutex_unlock(&td_global.lock);
    list->magic = 0;
    free(list);
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeCommandListClose(ze_command_list_handle_t list) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!list_valid(list)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (list->immediate) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    list->closed = true;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeCommandListReset(ze_command_list_handle_t list) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!list_valid(list)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    clear(list);
    list->closed = false;
    return ZE_RESULT_SUCCESS;
}

/* Runs one command (lock held). */
static ze_result_t run_command(const td_command *c) {
    switch (c->kind) {
    case TD_CMD_COPY:
        if (c->peer && td_global.config.peer == TD_PEER_FAIL) return ZE_RESULT_ERROR_UNKNOWN;
        td_ocl_finish(); /* kernels before the copy have written their results */
        memmove(c->dst, c->src, c->size);
        if (c->peer) atomic_fetch_add(&peer_copies, 1);
        return ZE_RESULT_SUCCESS;
    case TD_CMD_FILL:
        td_ocl_finish();
        for (size_t off = 0; off < c->size; off += c->pattern_size)
            memcpy((char *)c->dst + off, c->pattern,
                   c->size - off < c->pattern_size ? c->size - off : c->pattern_size);
        return ZE_RESULT_SUCCESS;
    case TD_CMD_LAUNCH:
        atomic_fetch_add(&launches, 1);
        return td_ocl_launch(c) ? ZE_RESULT_SUCCESS : ZE_RESULT_ERROR_UNKNOWN;
    case TD_CMD_BARRIER:
        return ZE_RESULT_SUCCESS; /* one in-order queue: everything before is already ordered */
    }
    return ZE_RESULT_ERROR_UNKNOWN;
}

ze_result_t td_command_list_run(ze_command_list_handle_t list) {
    ze_result_t r = ZE_RESULT_SUCCESS;
    for (uint32_t i = 0; i < list->n_commands && r == ZE_RESULT_SUCCESS; i++) r = run_command(&list->commands[i]);
    td_ocl_finish();
    return r;
}

/* Appends (regular list) or runs (immediate list) one command. Takes ownership of c->args. */
static ze_result_t append(ze_command_list_handle_t list, td_command *c, ze_event_handle_t signal, uint32_t n_wait) {
    if (signal || n_wait) {
        free(c->args);
        return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
    }
    if (list->immediate) {
        pthread_mutex_lock(&td_global.lock);
        ze_result_t r = td_submit_gate(list->device, false);
        if (r == ZE_RESULT_SUCCESS) {
            r = run_command(c);
            td_ocl_finish();
        }
        pthread_mutex_unlock(&td_global.lock);
        free(c->args);
        return r;
    }
    if (list->closed) {
        free(c->args);
        return ZE_RESULT_ERROR_INVALID_ARGUMENT; /* appending to a closed list: caller bug */
    }
    if (list->n_commands == list->cap_commands) {
        uint32_t cap = list->cap_commands ? 2 * list->cap_commands : 32;
        td_command *grown = realloc(list->commands, cap * sizeof *grown);
        if (!grown) {
            free(c->args);
            return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
        }
        list->commands = grown;
        list->cap_commands = cap;
    }
    list->commands[list->n_commands++] = *c;
    return ZE_RESULT_SUCCESS;
}

#define CHECK_LIST(list)                                                        \
    do {                                                                        \
        ze_result_t r_ = td_enter();                                            \
        if (r_ != ZE_RESULT_SUCCESS) return r_;                                 \
        if (!list_valid(list)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;      \
        if ((list)->device->lost) return ZE_RESULT_ERROR_DEVICE_LOST;           \
    } while (0)

ze_result_t ZE_APICALL td_zeCommandListAppendBarrier(ze_command_list_handle_t list, ze_event_handle_t signal,
                                                     uint32_t n_wait, ze_event_handle_t *wait) {
    CHECK_LIST(list);
    td_command c = {.kind = TD_CMD_BARRIER};
    return append(list, &c, signal, n_wait);
}

/* Host pointers are allowed on either side of a copy (as on Intel's driver, at a cost);
 * a range that starts inside an allocation must end inside it too. */
static bool range_ok(const void *p, size_t size) {
    pthread_mutex_lock(&td_global.lock);
    bool inside_start = td_mem_contains(p, 1);
    bool ok = !inside_start || td_mem_contains(p, size);
    pthread_mutex_unlock(&td_global.lock);
    return ok;
}

/* Which memory a copy on `list` may touch (Level Zero: memory of the list's context that its device
 * can reach). Host memory of no allocation is always allowed; an allocation of another context
 * never; another device's memory only with peer access (EXO_ZE_TEST_PEER), which makes the copy a
 * peer copy (*peer). */
static ze_result_t reachable(ze_command_list_handle_t list, const void *p, bool *peer) {
    pthread_mutex_lock(&td_global.lock);
    ze_context_handle_t context;
    ze_device_handle_t device;
    bool tracked = td_mem_owner(p, &context, &device);
    bool lost = device && device->lost, refused = td_global.config.peer == TD_PEER_NONE;
    pthread_mutex_unlock(&td_global.lock);
    if (!tracked) return ZE_RESULT_SUCCESS;
    if (context != list->context) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (!device || device == list->device) return ZE_RESULT_SUCCESS;
    if (lost) return ZE_RESULT_ERROR_DEVICE_LOST;
    if (refused) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    *peer = true;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeCommandListAppendMemoryCopy(ze_command_list_handle_t list, void *dst, const void *src,
                                                        size_t size, ze_event_handle_t signal, uint32_t n_wait,
                                                        ze_event_handle_t *wait) {
    CHECK_LIST(list);
    if (!dst || !src) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (!range_ok(dst, size) || !range_ok(src, size)) return ZE_RESULT_ERROR_INVALID_SIZE;
    bool peer = false;
    ze_result_t r = reachable(list, dst, &peer);
    if (r == ZE_RESULT_SUCCESS) r = reachable(list, src, &peer);
    if (r != ZE_RESULT_SUCCESS) return r;
    td_command c = {.kind = TD_CMD_COPY, .dst = dst, .src = src, .size = size, .peer = peer};
    return append(list, &c, signal, n_wait);
}

ze_result_t ZE_APICALL td_zeCommandListAppendMemoryFill(ze_command_list_handle_t list, void *ptr,
                                                        const void *pattern, size_t pattern_size, size_t size,
                                                        ze_event_handle_t signal, uint32_t n_wait,
                                                        ze_event_handle_t *wait) {
    CHECK_LIST(list);
    if (!ptr || !pattern) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (pattern_size == 0 || pattern_size > 16 || (pattern_size & (pattern_size - 1)) || size % pattern_size)
        return ZE_RESULT_ERROR_INVALID_SIZE;
    if (!range_ok(ptr, size)) return ZE_RESULT_ERROR_INVALID_SIZE;
    td_command c = {.kind = TD_CMD_FILL, .dst = ptr, .size = size, .pattern_size = pattern_size};
    memcpy(c.pattern, pattern, pattern_size);
    return append(list, &c, signal, n_wait);
}

ze_result_t ZE_APICALL td_zeCommandListAppendLaunchKernel(ze_command_list_handle_t list, ze_kernel_handle_t kernel,
                                                          const ze_group_count_t *count, ze_event_handle_t signal,
                                                          uint32_t n_wait, ze_event_handle_t *wait) {
    CHECK_LIST(list);
    if (!kernel || kernel->magic != TD_KERNEL_MAGIC) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!count) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (kernel->module->device != list->device) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    for (uint32_t i = 0; i < kernel->n_args; i++)
        if (!kernel->args[i].set) {
            fprintf(stderr, "exo-ze-test-driver: %s: argument %u was never set\n", kernel->name, i);
            return ZE_RESULT_ERROR_INVALID_ARGUMENT;
        }
    td_command c = {.kind = TD_CMD_LAUNCH, .kernel = kernel, .n_args = kernel->n_args};
    memcpy(c.group, kernel->group, sizeof c.group);
    c.count[0] = count->groupCountX;
    c.count[1] = count->groupCountY;
    c.count[2] = count->groupCountZ;
    c.args = malloc((kernel->n_args ? kernel->n_args : 1) * sizeof *c.args);
    if (!c.args) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    memcpy(c.args, kernel->args, kernel->n_args * sizeof *c.args);
    return append(list, &c, signal, n_wait);
}
