/* exo_kernels_cl.h — the OpenCL C kernels of kernels/, embedded at build time (generated
 * exo_kernels_cl.c, target exo_kernels_cl). Pass all of them, in order, to
 * clCreateProgramWithSource: common.cl comes first and the others use it. */
#ifndef EXO_KERNELS_CL_H
#define EXO_KERNELS_CL_H

extern const char *const exo_kernels_cl_sources[]; /* NUL-terminated */
extern const char *const exo_kernels_cl_names[];   /* file names, for messages */
extern const unsigned exo_kernels_cl_count;

#endif
