/* ocl_api.h — the OpenCL entry points this plugin calls, resolved at probe time from the ICD
 * loader (libOpenCL.so.1) with dlopen. The plugin never links libOpenCL, so it loads — and
 * reports "0 devices, because ..." — on machines without an OpenCL loader.
 *
 * Adding a call: add one X(name) line to OCL_API_FUNCTIONS; the table member, its type and its
 * lookup follow. The type of each member is the header's own prototype (__typeof__), so a
 * mismatch with the Khronos headers cannot creep in. */
#ifndef EXO_OPENCL_OCL_API_H
#define EXO_OPENCL_OCL_API_H

#define CL_TARGET_OPENCL_VERSION 300
/* clCreateCommandQueue (1.2) rather than ...WithProperties (2.0): it is what every driver has. */
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <CL/cl_ext.h>

#include "ocl_ext.h"

/* Every entry point the plugin uses. All of them are OpenCL 1.2 core functions, which every ICD
 * loader exports, so a missing symbol means a broken loader rather than an old one. */
#define OCL_API_FUNCTIONS(X) \
    X(clGetPlatformIDs)      \
    X(clGetPlatformInfo)     \
    X(clGetDeviceIDs)        \
    X(clGetDeviceInfo)

/* The entry points of work: contexts, buffers, programs, kernels. Also OpenCL 1.2 core, but
 * resolved separately so that a loader which only answers queries (the probe tests' stand-in)
 * still probes; device_open refuses to open a device when any of these is missing. */
#define OCL_EXEC_FUNCTIONS(X)      \
    X(clCreateContext)             \
    X(clReleaseContext)            \
    X(clCreateCommandQueue)        \
    X(clReleaseCommandQueue)       \
    X(clCreateBuffer)              \
    X(clReleaseMemObject)          \
    X(clEnqueueWriteBuffer)        \
    X(clEnqueueReadBuffer)         \
    X(clCreateProgramWithSource)   \
    X(clCreateProgramWithBinary)   \
    X(clBuildProgram)              \
    X(clGetProgramInfo)            \
    X(clGetProgramBuildInfo)       \
    X(clReleaseProgram)            \
    X(clCreateKernel)              \
    X(clReleaseKernel)             \
    X(clSetKernelArg)              \
    X(clEnqueueNDRangeKernel)      \
    X(clFinish)                    \
    X(clFlush)                     \
    X(clGetEventProfilingInfo)     \
    X(clReleaseEvent)

typedef struct ocl_api {
    void *library; /* dlopen handle; NULL until ocl_api_load succeeds */
    char library_name[256];
    char missing_exec[64]; /* first OCL_EXEC_FUNCTIONS entry the library lacks ("" when none) */
#define OCL_API_MEMBER(name) __typeof__(&name) name;
    OCL_API_FUNCTIONS(OCL_API_MEMBER)
    OCL_EXEC_FUNCTIONS(OCL_API_MEMBER)
#undef OCL_API_MEMBER
} ocl_api;

enum {
    OCL_API_LOADED = 0,
    OCL_API_NOT_FOUND = -1,  /* dlopen failed: no such library (or it cannot be loaded) */
    OCL_API_INCOMPLETE = -2, /* the library lacks an entry point */
};

/* Loads `library_name` (e.g. "libOpenCL.so.1") and resolves every entry point. Returns
 * OCL_API_LOADED, or an error with api->library NULL and `why` holding the dlerror text or the
 * name of the missing symbol. */
int ocl_api_load(ocl_api *api, const char *library_name, char *why, size_t why_size);

/* The CL_* name of an OpenCL status code ("CL_INVALID_VALUE"), or "CL_UNKNOWN_ERROR". */
const char *cl_error_name(cl_int code);

#endif
