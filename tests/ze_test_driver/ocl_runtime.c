/* ocl_runtime.c — the "GPU" behind the fake driver: PoCL's CPU device. One OpenCL context and
 * in-order queue per process, created on first use (never at load time: check forks its test
 * cases, and PoCL's worker threads must start in the child). USM memory is PoCL fine-grained
 * SVM, so the host reads and writes it directly and kernels take the same addresses. */
#include "ze_test_driver.h"

#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    bool tried;
    bool ok;
    char reason[256];
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue;
} ocl;

static bool find_device(void) {
    cl_uint n = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &n);
    if (e != CL_SUCCESS || n == 0) {
        snprintf(ocl.reason, sizeof ocl.reason, "no OpenCL platform (clGetPlatformIDs: %d); install pocl-opencl-icd", e);
        return false;
    }
    cl_platform_id platforms[16];
    if (n > 16) n = 16;
    clGetPlatformIDs(n, platforms, NULL);
    for (cl_uint i = 0; i < n; i++) {
        char name[256] = "";
        clGetPlatformInfo(platforms[i], CL_PLATFORM_NAME, sizeof name, name, NULL);
        if (!strstr(name, "Portable Computing Language")) continue; /* SVM + cl_khr_spir: PoCL only */
        if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_CPU, 1, &ocl.device, NULL) == CL_SUCCESS) {
            ocl.platform = platforms[i];
            return true;
        }
    }
    snprintf(ocl.reason, sizeof ocl.reason, "no PoCL CPU device among %u OpenCL platform(s)", n);
    return false;
}

bool td_ocl_ready(char *reason, size_t reason_size) {
    if (!ocl.tried) {
        ocl.tried = true;
        /* The driver is a test artifact: keep vendor ICDs (Intel's breaks ASan) out unless the
         * caller chose the vendor list itself. */
        setenv("OCL_ICD_VENDORS", "/etc/OpenCL/vendors/pocl.icd", 0);
        if (find_device()) {
            cl_int e;
            ocl.context = clCreateContext(NULL, 1, &ocl.device, NULL, NULL, &e);
            if (e == CL_SUCCESS) ocl.queue = clCreateCommandQueueWithProperties(ocl.context, ocl.device, NULL, &e);
            if (e != CL_SUCCESS)
                snprintf(ocl.reason, sizeof ocl.reason, "creating the PoCL context/queue failed: %d", e);
            ocl.ok = e == CL_SUCCESS;
        }
    }
    if (!ocl.ok && reason) snprintf(reason, reason_size, "%s", ocl.reason);
    return ocl.ok;
}

void *td_ocl_svm_alloc(size_t size, size_t alignment) {
    if (!td_ocl_ready(NULL, 0)) return NULL;
    if (alignment < 128) alignment = 128;
    return clSVMAlloc(ocl.context, CL_MEM_READ_WRITE | CL_MEM_SVM_FINE_GRAIN_BUFFER, size, (cl_uint)alignment);
}

void td_ocl_svm_free(void *ptr) {
    if (ptr && ocl.ok) clSVMFree(ocl.context, ptr);
}

void *td_ocl_program_from_spir(const unsigned char *bc, size_t size, char **log) {
    char reason[256];
    if (!td_ocl_ready(reason, sizeof reason)) {
        *log = strdup(reason);
        return NULL;
    }
    cl_int status = CL_SUCCESS, e;
    cl_program program = clCreateProgramWithBinary(ocl.context, 1, &ocl.device, &size, &bc, &status, &e);
    if (e != CL_SUCCESS) {
        char text[128];
        snprintf(text, sizeof text, "clCreateProgramWithBinary rejected the bitcode: %d (binary status %d)", e, status);
        *log = strdup(text);
        return NULL;
    }
    /* -cl-kernel-arg-info: PoCL then knows which arguments are global/local pointers. */
    e = clBuildProgram(program, 1, &ocl.device, "-x spir -spir-std=1.2 -cl-kernel-arg-info", NULL, NULL);
    size_t log_size = 0;
    clGetProgramBuildInfo(program, ocl.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
    char *text = malloc(log_size + 64);
    if (text) {
        int n = snprintf(text, 64, "PoCL clBuildProgram: %d\n", e);
        clGetProgramBuildInfo(program, ocl.device, CL_PROGRAM_BUILD_LOG, log_size, text + n, NULL);
        text[n + (int)log_size] = '\0';
    }
    *log = text;
    if (e != CL_SUCCESS) {
        clReleaseProgram(program);
        return NULL;
    }
    return program;
}

void td_ocl_program_release(void *program) {
    if (program) clReleaseProgram((cl_program)program);
}

ze_result_t td_ocl_kernel_create(void *program, const char *name, void **out, uint32_t *n_args, td_arg *args) {
    cl_int e;
    cl_kernel kernel = clCreateKernel((cl_program)program, name, &e);
    if (e != CL_SUCCESS) return ZE_RESULT_ERROR_INVALID_KERNEL_NAME;
    cl_uint n = 0;
    clGetKernelInfo(kernel, CL_KERNEL_NUM_ARGS, sizeof n, &n, NULL);
    if (n > TD_MAX_ARGS) {
        clReleaseKernel(kernel);
        return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
    }
    for (cl_uint i = 0; i < n; i++) {
        cl_kernel_arg_address_qualifier q = CL_KERNEL_ARG_ADDRESS_PRIVATE;
        e = clGetKernelArgInfo(kernel, i, CL_KERNEL_ARG_ADDRESS_QUALIFIER, sizeof q, &q, NULL);
        if (e != CL_SUCCESS) {
            clReleaseKernel(kernel);
            return ZE_RESULT_ERROR_UNKNOWN;
        }
        memset(&args[i], 0, sizeof args[i]);
        args[i].kind = q == CL_KERNEL_ARG_ADDRESS_LOCAL ? TD_ARG_LOCAL
                       : (q == CL_KERNEL_ARG_ADDRESS_GLOBAL || q == CL_KERNEL_ARG_ADDRESS_CONSTANT) ? TD_ARG_GLOBAL
                                                                                                   : TD_ARG_VALUE;
    }
    *n_args = n;
    *out = kernel;
    return ZE_RESULT_SUCCESS;
}

void td_ocl_kernel_release(void *kernel) {
    if (kernel) clReleaseKernel((cl_kernel)kernel);
}

bool td_ocl_launch(const td_command *c) {
    cl_kernel k = (cl_kernel)c->kernel->kernel;
    for (uint32_t i = 0; i < c->n_args; i++) {
        const td_arg *a = &c->args[i];
        cl_int e;
        if (a->kind == TD_ARG_GLOBAL)
            e = clSetKernelArgSVMPointer(k, i, a->pointer);
        else if (a->kind == TD_ARG_LOCAL)
            e = clSetKernelArg(k, i, a->size, NULL);
        else
            e = clSetKernelArg(k, i, a->size, a->value);
        if (e != CL_SUCCESS) {
            fprintf(stderr, "exo-ze-test-driver: %s: clSetKernelArg(%u) failed: %d\n", c->kernel->name, i, e);
            return false;
        }
    }
    size_t global[3], local[3];
    for (int d = 0; d < 3; d++) {
        local[d] = c->group[d];
        global[d] = (size_t)c->group[d] * c->count[d];
    }
    if (global[0] == 0 || global[1] == 0 || global[2] == 0) return true; /* an empty launch does nothing */
    cl_int e = clEnqueueNDRangeKernel(ocl.queue, k, 3, NULL, global, local, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
        fprintf(stderr, "exo-ze-test-driver: %s: clEnqueueNDRangeKernel failed: %d\n", c->kernel->name, e);
        return false;
    }
    return true;
}

void td_ocl_finish(void) {
    if (ocl.ok) clFinish(ocl.queue);
}
