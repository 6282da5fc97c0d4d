/* kernel.c — zeKernelCreate and the per-kernel state a launch captures: group size and
 * argument values. Arguments are checked like a GPU would fault on them: a global pointer must
 * point into a live USM allocation (or be NULL), a local argument gives only a size, and a
 * value argument must have the size the kernel declares. */
#include "ze_test_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool kernel_valid(ze_kernel_handle_t k) { return k && k->magic == TD_KERNEL_MAGIC; }

ze_result_t ZE_APICALL td_zeKernelCreate(ze_module_handle_t module, const ze_kernel_desc_t *desc,
                                         ze_kernel_handle_t *out) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!module || module->magic != TD_MODULE_MAGIC) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!desc || !out || !desc->pKernelName) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (desc->stype != ZE_STRUCTURE_TYPE_KERNEL_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    ze_kernel_handle_t k = calloc(1, sizeof *k);
    if (!k) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    k->magic = TD_KERNEL_MAGIC;
    k->module = module;
    snprintf(k->name, sizeof k->name, "%s", desc->pKernelName);
    k->group[0] = k->group[1] = k->group[2] = 1;
    pthread_mutex_lock(&td_global.lock);
    r = td_ocl_kernel_create(module->program, desc->pKernelName, &k->kernel, &k->n_args, k->args);
    if (r == ZE_RESULT_SUCCESS) module->context->n_live_objects++;
    pthread_mutex_unlock(&td_global.lock);
    if (r != ZE_RESULT_SUCCESS) {
        free(k);
        return r;
    }
    *out = k;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeKernelDestroy(ze_kernel_handle_t kernel) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!kernel_valid(kernel)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    pthread_mutex_lock(&td_global.lock);
    td_ocl_kernel_release(kernel->kernel);
    kernel->module->context->n_live_objects--;
    pthread_mutex_unlock(&td_global.lock);
    kernel->magic = 0;
    free(kernel);
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeKernelSetGroupSize(ze_kernel_handle_t kernel, uint32_t x, uint32_t y, uint32_t z) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!kernel_valid(kernel)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    const ze_device_compute_properties_t *c = &kernel->module->device->compute;
    if (x == 0 || y == 0 || z == 0 || x > c->maxGroupSizeX || y > c->maxGroupSizeY || z > c->maxGroupSizeZ ||
        (uint64_t)x * y * z > c->maxTotalGroupSize)
        return ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION;
    kernel->group[0] = x;
    kernel->group[1] = y;
    kernel->group[2] = z;
    return ZE_RESULT_SUCCESS;
}

/* Largest power of two <= limit that divides the global size, per dimension. */
static uint32_t suggest(uint32_t global, uint32_t limit) {
    uint32_t g = 1;
    while (g * 2 <= limit && global % (g * 2) == 0) g *= 2;
    return g;
}

ze_result_t ZE_APICALL td_zeKernelSuggestGroupSize(ze_kernel_handle_t kernel, uint32_t gx, uint32_t gy, uint32_t gz,
                                                   uint32_t *x, uint32_t *y, uint32_t *z) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!kernel_valid(kernel)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!x || !y || !z) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    uint32_t total = kernel->module->device->compute.maxTotalGroupSize;
    *x = suggest(gx, total < 256 ? total : 256);
    *y = suggest(gy, total / *x);
    *z = suggest(gz, total / (*x * *y));
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeKernelSetArgumentValue(ze_kernel_handle_t kernel, uint32_t index, size_t size,
                                                   const void *value) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!kernel_valid(kernel)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (index >= kernel->n_args) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_INDEX;
    td_arg *a = &kernel->args[index];
    switch (a->kind) {
    case TD_ARG_GLOBAL: {
        if (size != sizeof(void *)) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
        void *p = NULL;
        if (value) memcpy(&p, value, sizeof p);
        pthread_mutex_lock(&td_global.lock);
        bool ok = !p || td_mem_contains(p, 1);
        pthread_mutex_unlock(&td_global.lock);
        if (!ok) return ZE_RESULT_ERROR_INVALID_ARGUMENT; /* not USM: a GPU would page-fault */
        a->pointer = p;
        break;
    }
    case TD_ARG_LOCAL:
        if (value || size == 0) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
        a->size = size;
        break;
    case TD_ARG_VALUE:
        if (!value) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
        if (size == 0 || size > sizeof a->value) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
        memcpy(a->value, value, size);
        a->size = size;
        break;
    }
    a->set = true;
    return ZE_RESULT_SUCCESS;
}

ze_result_t ZE_APICALL td_zeKernelGetProperties(ze_kernel_handle_t kernel, ze_kernel_properties_t *props) {
    ze_result_t r = td_enter();
    if (r != ZE_RESULT_SUCCESS) return r;
    if (!kernel_valid(kernel)) return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    if (!props) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    void *next = props->pNext;
    memset(props, 0, sizeof *props);
    props->stype = ZE_STRUCTURE_TYPE_KERNEL_PROPERTIES;
    props->pNext = next;
    props->numKernelArgs = kernel->n_args;
    props->maxSubgroupSize = 1; /* PoCL: no subgroups */
    props->maxNumSubgroups = 1;
    return ZE_RESULT_SUCCESS;
}
