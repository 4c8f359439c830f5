/* The part of ONNX Runtime's C API (onnxruntime_c_api.h) the ORT C-API workload uses.
 *
 * Why a hand-written prefix: the onnxruntime wheel ships no headers and no registry this project may
 * use carries them.  ONNX Runtime's C ABI is append-only: OrtApi is a struct of function pointers
 * whose existing members are never reordered or removed (new ones go at the end, one block per API
 * version), so a prefix of the struct with the members in their published order addresses the same
 * slots in every later release.  The order below was checked member by member against
 * include/onnxruntime/core/session/onnxruntime_c_api.h of microsoft/onnxruntime (slots 0-110, up to
 * SessionEndProfiling, unchanged since API version 1).  The driver also checks the library's version
 * string at run time and fails if GetApi() refuses the requested version.
 */
#ifndef UK_DEPSCAN_ORT_API_MIN_H
#define UK_DEPSCAN_ORT_API_MIN_H
#include <stddef.h>
#include <stdint.h>

/* ONNX Runtime sets ORT_API_VERSION to the release's minor number (1.31.x -> 31). */
#define ORT_API_VERSION 31

typedef struct OrtStatus OrtStatus;
typedef struct OrtEnv OrtEnv;
typedef struct OrtMemoryInfo OrtMemoryInfo;
typedef struct OrtSession OrtSession;
typedef struct OrtValue OrtValue;
typedef struct OrtRunOptions OrtRunOptions;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtAllocator OrtAllocator;

typedef enum { ORT_LOGGING_LEVEL_VERBOSE, ORT_LOGGING_LEVEL_INFO, ORT_LOGGING_LEVEL_WARNING,
               ORT_LOGGING_LEVEL_ERROR, ORT_LOGGING_LEVEL_FATAL } OrtLoggingLevel;
typedef enum { ORT_SEQUENTIAL = 0, ORT_PARALLEL = 1 } ExecutionMode;
typedef enum { ORT_DISABLE_ALL = 0, ORT_ENABLE_BASIC = 1, ORT_ENABLE_EXTENDED = 2, ORT_ENABLE_ALL = 99 }
    GraphOptimizationLevel;
typedef enum { OrtInvalidAllocator = -1, OrtDeviceAllocator = 0, OrtArenaAllocator = 1 } OrtAllocatorType;
typedef enum { OrtMemTypeCPUInput = -2, OrtMemTypeCPUOutput = -1, OrtMemTypeDefault = 0 } OrtMemType;
enum { ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT = 1 };

typedef struct OrtApi OrtApi;
typedef struct OrtApiBase {
  const OrtApi *(*GetApi)(uint32_t version);
  const char *(*GetVersionString)(void);
} OrtApiBase;

#define S_(name, ...) OrtStatus *(*name)(__VA_ARGS__)
#define U_(name) void *name /* a slot this driver never calls */

struct OrtApi {
  /* 0 */ OrtStatus *(*CreateStatus)(int code, const char *msg);
  /* 1 */ int (*GetErrorCode)(const OrtStatus *status);
  /* 2 */ const char *(*GetErrorMessage)(const OrtStatus *status);
  /* 3 */ S_(CreateEnv, OrtLoggingLevel level, const char *logid, OrtEnv **out);
  /* 4 */ U_(CreateEnvWithCustomLogger);
  /* 5 */ U_(EnableTelemetryEvents);
  /* 6 */ S_(DisableTelemetryEvents, const OrtEnv *env);
  /* 7 */ S_(CreateSession, const OrtEnv *env, const char *model_path, const OrtSessionOptions *options,
             OrtSession **out);
  /* 8 */ S_(CreateSessionFromArray, const OrtEnv *env, const void *model_data, size_t model_data_length,
             const OrtSessionOptions *options, OrtSession **out);
  /* 9 */ S_(Run, OrtSession *session, const OrtRunOptions *run_options, const char *const *input_names,
             const OrtValue *const *inputs, size_t input_len, const char *const *output_names,
             size_t output_names_len, OrtValue **outputs);
  /* 10 */ S_(CreateSessionOptions, OrtSessionOptions **options);
  /* 11 */ S_(SetOptimizedModelFilePath, OrtSessionOptions *options, const char *path);
  /* 12 */ U_(CloneSessionOptions);
  /* 13 */ S_(SetSessionExecutionMode, OrtSessionOptions *options, ExecutionMode mode);
  /* 14 */ S_(EnableProfiling, OrtSessionOptions *options, const char *profile_file_prefix);
  /* 15 */ S_(DisableProfiling, OrtSessionOptions *options);
  /* 16 */ S_(EnableMemPattern, OrtSessionOptions *options);
  /* 17 */ S_(DisableMemPattern, OrtSessionOptions *options);
  /* 18 */ S_(EnableCpuMemArena, OrtSessionOptions *options);
  /* 19 */ S_(DisableCpuMemArena, OrtSessionOptions *options);
  /* 20 */ U_(SetSessionLogId);
  /* 21 */ U_(SetSessionLogVerbosityLevel);
  /* 22 */ U_(SetSessionLogSeverityLevel);
  /* 23 */ S_(SetSessionGraphOptimizationLevel, OrtSessionOptions *options, GraphOptimizationLevel level);
  /* 24 */ S_(SetIntraOpNumThreads, OrtSessionOptions *options, int intra_op_num_threads);
  /* 25 */ S_(SetInterOpNumThreads, OrtSessionOptions *options, int inter_op_num_threads);
  /* 26 */ U_(CreateCustomOpDomain);
  /* 27 */ U_(CustomOpDomain_Add);
  /* 28 */ U_(AddCustomOpDomain);
  /* 29 */ U_(RegisterCustomOpsLibrary);
  /* 30 */ S_(SessionGetInputCount, const OrtSession *session, size_t *out);
  /* 31 */ S_(SessionGetOutputCount, const OrtSession *session, size_t *out);
  /* 32 */ U_(SessionGetOverridableInitializerCount);
  /* 33 */ U_(SessionGetInputTypeInfo);
  /* 34 */ U_(SessionGetOutputTypeInfo);
  /* 35 */ U_(SessionGetOverridableInitializerTypeInfo);
  /* 36 */ U_(SessionGetInputName);
  /* 37 */ U_(SessionGetOutputName);
  /* 38 */ U_(SessionGetOverridableInitializerName);
  /* 39 */ S_(CreateRunOptions, OrtRunOptions **out);
  /* 40 */ U_(RunOptionsSetRunLogVerbosityLevel);
  /* 41 */ U_(RunOptionsSetRunLogSeverityLevel);
  /* 42 */ S_(RunOptionsSetRunTag, OrtRunOptions *options, const char *run_tag);
  /* 43 */ U_(RunOptionsGetRunLogVerbosityLevel);
  /* 44 */ U_(RunOptionsGetRunLogSeverityLevel);
  /* 45 */ U_(RunOptionsGetRunTag);
  /* 46 */ U_(RunOptionsSetTerminate);
  /* 47 */ U_(RunOptionsUnsetTerminate);
  /* 48 */ U_(CreateTensorAsOrtValue);
  /* 49 */ S_(CreateTensorWithDataAsOrtValue, const OrtMemoryInfo *info, void *p_data, size_t p_data_len,
              const int64_t *shape, size_t shape_len, int type, OrtValue **out);
  /* 50 */ S_(IsTensor, const OrtValue *value, int *out);
  /* 51 */ S_(GetTensorMutableData, OrtValue *value, void **out);
  /* 52 */ U_(FillStringTensor);
  /* 53 */ U_(GetStringTensorDataLength);
  /* 54 */ U_(GetStringTensorContent);
  /* 55 */ U_(CastTypeInfoToTensorInfo);
  /* 56 */ U_(GetOnnxTypeFromTypeInfo);
  /* 57 */ U_(CreateTensorTypeAndShapeInfo);
  /* 58 */ U_(SetTensorElementType);
  /* 59 */ U_(SetDimensions);
  /* 60 */ U_(GetTensorElementType);
  /* 61 */ U_(GetDimensionsCount);
  /* 62 */ U_(GetDimensions);
  /* 63 */ U_(GetSymbolicDimensions);
  /* 64 */ U_(GetTensorShapeElementCount);
  /* 65 */ U_(GetTensorTypeAndShape);
  /* 66 */ U_(GetTypeInfo);
  /* 67 */ U_(GetValueType);
  /* 68 */ U_(CreateMemoryInfo);
  /* 69 */ S_(CreateCpuMemoryInfo, OrtAllocatorType type, OrtMemType mem_type, OrtMemoryInfo **out);
  /* 70 */ U_(CompareMemoryInfo);
  /* 71 */ U_(MemoryInfoGetName);
  /* 72 */ U_(MemoryInfoGetId);
  /* 73 */ U_(MemoryInfoGetMemType);
  /* 74 */ U_(MemoryInfoGetType);
  /* 75 */ U_(AllocatorAlloc);
  /* 76 */ S_(AllocatorFree, OrtAllocator *allocator, void *p);
  /* 77 */ U_(AllocatorGetInfo);
  /* 78 */ S_(GetAllocatorWithDefaultOptions, OrtAllocator **out);
  /* 79 */ U_(AddFreeDimensionOverride);
  /* 80 */ U_(GetValue);
  /* 81 */ U_(GetValueCount);
  /* 82 */ U_(CreateValue);
  /* 83 */ U_(CreateOpaqueValue);
  /* 84 */ U_(GetOpaqueValue);
  /* 85 */ U_(KernelInfoGetAttribute_float);
  /* 86 */ U_(KernelInfoGetAttribute_int64);
  /* 87 */ U_(KernelInfoGetAttribute_string);
  /* 88 */ U_(KernelContext_GetInputCount);
  /* 89 */ U_(KernelContext_GetOutputCount);
  /* 90 */ U_(KernelContext_GetInput);
  /* 91 */ U_(KernelContext_GetOutput);
  /* 92 */ void (*ReleaseEnv)(OrtEnv *input);
  /* 93 */ void (*ReleaseStatus)(OrtStatus *input);
  /* 94 */ void (*ReleaseMemoryInfo)(OrtMemoryInfo *input);
  /* 95 */ void (*ReleaseSession)(OrtSession *input);
  /* 96 */ void (*ReleaseValue)(OrtValue *input);
  /* 97 */ void (*ReleaseRunOptions)(OrtRunOptions *input);
  /* 98 */ U_(ReleaseTypeInfo);
  /* 99 */ U_(ReleaseTensorTypeAndShapeInfo);
  /* 100 */ void (*ReleaseSessionOptions)(OrtSessionOptions *input);
  /* 101 */ U_(ReleaseCustomOpDomain);
  /* 102 */ U_(GetDenotationFromTypeInfo);
  /* 103 */ U_(CastTypeInfoToMapTypeInfo);
  /* 104 */ U_(CastTypeInfoToSequenceTypeInfo);
  /* 105 */ U_(GetMapKeyType);
  /* 106 */ U_(GetMapValueType);
  /* 107 */ U_(GetSequenceElementType);
  /* 108 */ U_(ReleaseMapTypeInfo);
  /* 109 */ U_(ReleaseSequenceTypeInfo);
  /* 110 */ S_(SessionEndProfiling, OrtSession *session, OrtAllocator *allocator, char **out);
};

#undef S_
#undef U_
#endif
