/* LiteRT C-API workload: dlopen()s ai-edge-litert's libLiteRt.so and runs a TFLite model through its
 * exported CompiledModel C API (the only way libLiteRt.so's own runtime runs: the Python API uses the
 * copy inside libpywrap_litert_common.so).
 *
 * Declarations: the wheel ships no headers; the signatures below are those of the litert/c headers in
 * google-ai-edge/LiteRT (identical in tag v2.2.0 and in the newer tree checked), written out here
 * for the functions used.  Handles are opaque pointers; LiteRtRankedTensorType is only passed by
 * pointer from LiteRtGetRankedTensorType to LiteRtCreateManagedTensorBufferFromRequirements, so the
 * driver keeps it in an aligned buffer larger than the struct instead of declaring its layout.
 *
 * usage: litert_c_driver LIB MODEL [--memory] [--threads N] [--runs N] [--metrics]
 *   --memory   LiteRtCreateModelFromBuffer instead of LiteRtCreateModelFromFile
 *   --metrics  collect runtime metrics around the runs (LiteRT's profiling switch)
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int LiteRtStatus; /* kLiteRtStatusOk = 0 */
typedef size_t LiteRtParamIndex;
typedef void *Handle;     /* LiteRtEnvironment, LiteRtModel, LiteRtOptions, ... */
enum { kLiteRtHwAcceleratorCpu = 1, kLiteRtTensorBufferLockModeRead = 0, kLiteRtTensorBufferLockModeWrite = 1 };

static void *lib;
static void *sym(const char *name) {
  void *p = dlsym(lib, name);
  if (!p) { fprintf(stderr, "litert_c_driver: missing %s\n", name); exit(1); }
  return p;
}
#define FN(ret, name, ...) ret (*name)(__VA_ARGS__) = (ret(*)(__VA_ARGS__))sym(#name)
#define CHECK(call) do { LiteRtStatus s_ = (call); if (s_) { fprintf(stderr, "litert_c_driver: %s -> %d\n", #call, s_); exit(1); } } while (0)

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s LIB MODEL [options]\n", argv[0]); return 2; }
  const char *path = argv[1], *model_path = argv[2];
  int memory = 0, threads = 2, runs = 3, metrics_on = 0;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--memory")) memory = 1;
    else if (!strcmp(argv[i], "--metrics")) metrics_on = 1;
    else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--runs")) runs = atoi(argv[++i]);
    else { fprintf(stderr, "litert_c_driver: unknown option %s\n", argv[i]); return 2; }
  }
  lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) { fprintf(stderr, "litert_c_driver: %s\n", dlerror()); return 1; }

  FN(LiteRtStatus, LiteRtCreateEnvironment, int, const void *, Handle *);
  FN(void, LiteRtDestroyEnvironment, Handle);
  FN(LiteRtStatus, LiteRtCreateModelFromFile, Handle, const char *, Handle *);
  FN(LiteRtStatus, LiteRtCreateModelFromBuffer, Handle, const void *, size_t, Handle *);
  FN(void, LiteRtDestroyModel, Handle);
  FN(LiteRtStatus, LiteRtCreateOptions, Handle *);
  FN(void, LiteRtDestroyOptions, Handle);
  FN(LiteRtStatus, LiteRtSetOptionsHardwareAccelerators, Handle, int);
  FN(LiteRtStatus, LiteRtCreateOpaqueOptions, const char *, void *, void (*)(void *), Handle *);
  FN(LiteRtStatus, LiteRtAddOpaqueOptions, Handle, Handle);
  FN(LiteRtStatus, LiteRtCreateCompiledModel, Handle, Handle, Handle, Handle *);
  FN(void, LiteRtDestroyCompiledModel, Handle);
  FN(LiteRtStatus, LiteRtGetModelSignature, Handle, LiteRtParamIndex, Handle *);
  FN(LiteRtStatus, LiteRtGetSignatureInputTensorByIndex, Handle, LiteRtParamIndex, Handle *);
  FN(LiteRtStatus, LiteRtGetSignatureOutputTensorByIndex, Handle, LiteRtParamIndex, Handle *);
  FN(LiteRtStatus, LiteRtGetRankedTensorType, Handle, void *);
  FN(LiteRtStatus, LiteRtGetCompiledModelInputBufferRequirements, Handle, LiteRtParamIndex, LiteRtParamIndex, Handle *);
  FN(LiteRtStatus, LiteRtGetCompiledModelOutputBufferRequirements, Handle, LiteRtParamIndex, LiteRtParamIndex, Handle *);
  FN(LiteRtStatus, LiteRtGetTensorBufferRequirementsBufferSize, Handle, size_t *);
  FN(LiteRtStatus, LiteRtCreateManagedTensorBufferFromRequirements, Handle, const void *, Handle, Handle *);
  FN(LiteRtStatus, LiteRtLockTensorBuffer, Handle, void **, int);
  FN(LiteRtStatus, LiteRtUnlockTensorBuffer, Handle);
  FN(void, LiteRtDestroyTensorBuffer, Handle);
  FN(LiteRtStatus, LiteRtRunCompiledModel, Handle, LiteRtParamIndex, size_t, Handle *, size_t, Handle *);
  FN(LiteRtStatus, LiteRtCreateMetrics, Handle *);
  FN(LiteRtStatus, LiteRtGetNumMetrics, Handle, int *);
  FN(void, LiteRtDestroyMetrics, Handle);
  FN(LiteRtStatus, LiteRtCompiledModelStartMetricsCollection, Handle, int);
  FN(LiteRtStatus, LiteRtCompiledModelStopMetricsCollection, Handle, Handle);

  Handle env, model, options, opaque, compiled, sig, tin, tout, req_in, req_out, buf_in, buf_out;
  CHECK(LiteRtCreateEnvironment(0, NULL, &env));
  void *data = NULL;
  if (memory) {
    FILE *f = fopen(model_path, "rb");
    if (!f) { perror(model_path); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)n);
    if (!data || fread(data, 1, (size_t)n, f) != (size_t)n) { perror(model_path); return 1; }
    fclose(f);
    CHECK(LiteRtCreateModelFromBuffer(env, data, (size_t)n, &model)); /* the buffer must outlive the model */
  } else {
    CHECK(LiteRtCreateModelFromFile(env, model_path, &model));
  }
  CHECK(LiteRtCreateOptions(&options));
  CHECK(LiteRtSetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu));
  /* CPU options travel as an opaque "xnnpack" payload holding TOML text (litert_cpu_options.cc). */
  char *cpu = malloc(64);
  snprintf(cpu, 64, "num_threads = %d\n", threads);
  CHECK(LiteRtCreateOpaqueOptions("xnnpack", cpu, free, &opaque));
  CHECK(LiteRtAddOpaqueOptions(options, opaque)); /* ownership of `opaque` passes to `options` */
  CHECK(LiteRtCreateCompiledModel(env, model, options, &compiled));

  _Alignas(16) unsigned char type_in[512], type_out[512]; /* LiteRtRankedTensorType is 72 bytes */
  CHECK(LiteRtGetModelSignature(model, 0, &sig));
  CHECK(LiteRtGetSignatureInputTensorByIndex(sig, 0, &tin));
  CHECK(LiteRtGetSignatureOutputTensorByIndex(sig, 0, &tout));
  CHECK(LiteRtGetRankedTensorType(tin, type_in));
  CHECK(LiteRtGetRankedTensorType(tout, type_out));
  CHECK(LiteRtGetCompiledModelInputBufferRequirements(compiled, 0, 0, &req_in));
  CHECK(LiteRtGetCompiledModelOutputBufferRequirements(compiled, 0, 0, &req_out));
  size_t in_size, out_size;
  CHECK(LiteRtGetTensorBufferRequirementsBufferSize(req_in, &in_size));
  CHECK(LiteRtGetTensorBufferRequirementsBufferSize(req_out, &out_size));
  CHECK(LiteRtCreateManagedTensorBufferFromRequirements(env, type_in, req_in, &buf_in));
  CHECK(LiteRtCreateManagedTensorBufferFromRequirements(env, type_out, req_out, &buf_out));

  Handle metrics = NULL;
  if (metrics_on) CHECK(LiteRtCompiledModelStartMetricsCollection(compiled, 1));
  double total = 0;
  for (int r = 0; r < runs; r++) {
    float *p;
    CHECK(LiteRtLockTensorBuffer(buf_in, (void **)&p, kLiteRtTensorBufferLockModeWrite));
    for (size_t i = 0; i < in_size / sizeof(float); i++) p[i] = (float)((i * 7 + (size_t)r) % 13) / 13.0f;
    CHECK(LiteRtUnlockTensorBuffer(buf_in));
    CHECK(LiteRtRunCompiledModel(compiled, 0, 1, &buf_in, 1, &buf_out));
    CHECK(LiteRtLockTensorBuffer(buf_out, (void **)&p, kLiteRtTensorBufferLockModeRead));
    for (size_t i = 0; i < out_size / sizeof(float); i++) total += p[i];
    CHECK(LiteRtUnlockTensorBuffer(buf_out));
  }
  int nmetrics = -1;
  if (metrics_on) {
    CHECK(LiteRtCreateMetrics(&metrics));
    CHECK(LiteRtCompiledModelStopMetricsCollection(compiled, metrics));
    CHECK(LiteRtGetNumMetrics(metrics, &nmetrics));
    LiteRtDestroyMetrics(metrics);
  }
  printf("litert: input %zu bytes, output %zu bytes, %d runs, sum %.6f, metrics %d\n", in_size, out_size, runs,
         total, nmetrics);
  LiteRtDestroyTensorBuffer(buf_in);
  LiteRtDestroyTensorBuffer(buf_out);
  LiteRtDestroyCompiledModel(compiled);
  LiteRtDestroyOptions(options);
  LiteRtDestroyModel(model);
  LiteRtDestroyEnvironment(env);
  free(data);
  return 0;
}
