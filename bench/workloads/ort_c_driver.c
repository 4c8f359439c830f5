/* ONNX Runtime C-API workload: dlopen()s libonnxruntime.so.1.31.1 (the versioned file, as a service
 * embedding ORT does) and runs real inference through OrtGetApiBase()->GetApi(ORT_API_VERSION).
 *
 * usage: ort_c_driver LIB MODEL --shape 4,64 [--memory] [--threads N] [--inter N] [--parallel]
 *                     [--profile PREFIX] [--save-optimized PATH] [--no-arena] [--runs N] [--linger S]
 *   --memory          load the model from a buffer (CreateSessionFromArray) instead of the file
 *   --save-optimized  write the optimized graph to PATH, then open PATH in a second session and run it
 *   --linger S        keep the environment alive S seconds after inference (ORT starts background
 *                     work a few seconds after the environment is created; a service lives longer)
 * Input "x" is filled with a fixed pattern; output "y" is summed and printed.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ort_api_min.h"

static const OrtApi *api;

static void check(OrtStatus *st, const char *what) {
  if (st) {
    fprintf(stderr, "ort_c_driver: %s: %s\n", what, api->GetErrorMessage(st));
    api->ReleaseStatus(st);
    exit(1);
  }
}

static void *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc((size_t)n);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(1); }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static double run_session(OrtSession *sess, const OrtMemoryInfo *mi, const int64_t *shape, size_t rank,
                          int runs, int tag) {
  size_t count = 1;
  for (size_t i = 0; i < rank; i++) count *= (size_t)shape[i];
  float *data = malloc(count * sizeof(float));
  const char *in_names[] = {"x"}, *out_names[] = {"y"};
  OrtRunOptions *ro;
  char tagbuf[32];
  check(api->CreateRunOptions(&ro), "CreateRunOptions");
  snprintf(tagbuf, sizeof tagbuf, "run-%d", tag);
  check(api->RunOptionsSetRunTag(ro, tagbuf), "RunOptionsSetRunTag");
  double total = 0;
  for (int r = 0; r < runs; r++) {
    for (size_t i = 0; i < count; i++) data[i] = (float)((i * 7 + (size_t)r) % 13) / 13.0f;
    OrtValue *in = NULL, *out = NULL;
    check(api->CreateTensorWithDataAsOrtValue(mi, data, count * sizeof(float), shape, rank,
                                              ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in), "CreateTensor");
    check(api->Run(sess, ro, in_names, (const OrtValue *const *)&in, 1, out_names, 1, &out), "Run");
    float *y;
    check(api->GetTensorMutableData(out, (void **)&y), "GetTensorMutableData");
    for (int i = 0; i < 10; i++) total += y[i];
    api->ReleaseValue(out);
    api->ReleaseValue(in);
  }
  api->ReleaseRunOptions(ro);
  free(data);
  return total;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s LIB MODEL [options]\n", argv[0]); return 2; }
  const char *lib = argv[1], *model = argv[2], *profile = NULL, *save = NULL;
  int memory = 0, threads = 2, inter = 1, parallel = 0, no_arena = 0, runs = 3, linger = 4;
  int64_t shape[8];
  size_t rank = 0;
  for (int i = 3; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--memory")) memory = 1;
    else if (!strcmp(a, "--parallel")) parallel = 1;
    else if (!strcmp(a, "--no-arena")) no_arena = 1;
    else if (v && !strcmp(a, "--threads")) threads = atoi(v), i++;
    else if (v && !strcmp(a, "--inter")) inter = atoi(v), i++;
    else if (v && !strcmp(a, "--runs")) runs = atoi(v), i++;
    else if (v && !strcmp(a, "--linger")) linger = atoi(v), i++;
    else if (v && !strcmp(a, "--profile")) profile = v, i++;
    else if (v && !strcmp(a, "--save-optimized")) save = v, i++;
    else if (v && !strcmp(a, "--shape")) {
      for (char *p = (char *)v; *p && rank < 8; p++) {
        shape[rank++] = strtoll(p, &p, 10);
        if (!*p) break;
      }
      i++;
    } else { fprintf(stderr, "ort_c_driver: unknown option %s\n", a); return 2; }
  }
  if (!rank) { fprintf(stderr, "ort_c_driver: --shape is required\n"); return 2; }

  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "ort_c_driver: %s\n", dlerror()); return 1; }
  const OrtApiBase *(*get_base)(void) = (const OrtApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
  if (!get_base) { fprintf(stderr, "ort_c_driver: no OrtGetApiBase in %s\n", lib); return 1; }
  const OrtApiBase *base = get_base();
  const char *version = base->GetVersionString();
  api = base->GetApi(ORT_API_VERSION);
  if (!api) { fprintf(stderr, "ort_c_driver: %s refuses API version %d\n", version, ORT_API_VERSION); return 1; }
  if (strncmp(version, "1.31.", 5) != 0) {
    /* the slot layout of ort_api_min.h holds for every 1.x release; the dev set is made with 1.31 */
    fprintf(stderr, "ort_c_driver: expected onnxruntime 1.31.x, found %s\n", version);
    return 1;
  }

  OrtEnv *env;
  OrtSessionOptions *so;
  OrtSession *sess;
  OrtMemoryInfo *mi;
  check(api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "uk-depscan-workload", &env), "CreateEnv");
  check(api->CreateSessionOptions(&so), "CreateSessionOptions");
  check(api->SetIntraOpNumThreads(so, threads), "SetIntraOpNumThreads");
  check(api->SetInterOpNumThreads(so, inter), "SetInterOpNumThreads");
  check(api->SetSessionGraphOptimizationLevel(so, ORT_ENABLE_ALL), "SetSessionGraphOptimizationLevel");
  if (parallel) check(api->SetSessionExecutionMode(so, ORT_PARALLEL), "SetSessionExecutionMode");
  if (no_arena) {
    check(api->DisableCpuMemArena(so), "DisableCpuMemArena");
    check(api->DisableMemPattern(so), "DisableMemPattern");
  }
  if (profile) check(api->EnableProfiling(so, profile), "EnableProfiling");
  else check(api->DisableProfiling(so), "DisableProfiling");
  if (save) check(api->SetOptimizedModelFilePath(so, save), "SetOptimizedModelFilePath");

  if (memory) {
    size_t len;
    void *buf = slurp(model, &len);
    check(api->CreateSessionFromArray(env, buf, len, so, &sess), "CreateSessionFromArray");
    free(buf);
  } else {
    check(api->CreateSession(env, model, so, &sess), "CreateSession");
  }
  size_t nin, nout;
  check(api->SessionGetInputCount(sess, &nin), "SessionGetInputCount");
  check(api->SessionGetOutputCount(sess, &nout), "SessionGetOutputCount");
  check(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mi), "CreateCpuMemoryInfo");
  double total = run_session(sess, mi, shape, rank, runs, 1);
  printf("onnxruntime %s: %zu in, %zu out, %d runs, sum %.6f\n", version, nin, nout, runs, total);

  if (profile) {
    OrtAllocator *alloc;
    char *name;
    check(api->GetAllocatorWithDefaultOptions(&alloc), "GetAllocatorWithDefaultOptions");
    check(api->SessionEndProfiling(sess, alloc, &name), "SessionEndProfiling");
    printf("profile written to %s\n", name);
    check(api->AllocatorFree(alloc, name), "AllocatorFree");
  }
  if (save) {
    /* the saved, optimized model is what a service would ship: load it and run it again */
    OrtSessionOptions *so2;
    OrtSession *sess2;
    check(api->CreateSessionOptions(&so2), "CreateSessionOptions");
    check(api->SetIntraOpNumThreads(so2, threads), "SetIntraOpNumThreads");
    check(api->CreateSession(env, save, so2, &sess2), "CreateSession(saved)");
    printf("reloaded %s: sum %.6f\n", save, run_session(sess2, mi, shape, rank, runs, 2));
    api->ReleaseSession(sess2);
    api->ReleaseSessionOptions(so2);
  }
  fflush(stdout);
  sleep((unsigned)linger);
  api->ReleaseMemoryInfo(mi);
  api->ReleaseSession(sess);
  api->ReleaseSessionOptions(so);
  api->ReleaseEnv(env);
  return 0;
}
