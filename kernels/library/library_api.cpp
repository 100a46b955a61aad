// Loading cuDNN and cuBLASLt at the first use (library_api.h): dlopen by soname (then by the path
// CMake found at build time), one dlsym per function, and the version checks.
#include "kernels/library/library_api.h"

#include <dlfcn.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernels/library.h"

namespace cxr::library {

namespace {

// The names to try, in order: the soname of the major version this build was compiled against,
// then the file CMake found (CXR_CUDNN_PATH / CXR_CUBLASLT_PATH), which may not be on the loader's path.
void* open_first(const std::vector<std::string>& names, std::string& tried) {
  for (const std::string& name : names) {
    if (name.empty()) continue;
    if (void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
    const char* why = dlerror();
    tried += (tried.empty() ? "" : "; ") + (why ? std::string(why) : name);
  }
  return nullptr;
}

template <typename Fn>
void resolve(void* handle, const char* library, const char* name, Fn& fn) {
  fn = reinterpret_cast<Fn>(dlsym(handle, name));
  CXR_CHECK(fn, "--kernels library: ", library, " has no function ", name,
            " (too old or not the library this build expects)");
}

LibraryApi load() {
  LibraryApi api;
  std::string tried;
  const std::string cudnn_soname = "libcudnn.so." + std::to_string(CUDNN_MAJOR);
#ifdef CXR_CUDNN_PATH
  const std::string cudnn_path = CXR_CUDNN_PATH;
#else
  const std::string cudnn_path;
#endif
  void* cudnn = open_first({cudnn_soname, cudnn_path}, tried);
  CXR_CHECK(cudnn, "--kernels library needs cuDNN ", version_string(kMinCudnnVersion), " or newer (",
            cudnn_soname, "), not loaded: ", tried, ". Install cuDNN 9 (or add it to LD_LIBRARY_PATH), or run with ",
            "--kernels cxr");
#define CXR_RESOLVE_CUDNN(name) resolve(cudnn, cudnn_soname.c_str(), #name, api.cudnn.name);
  CXR_CUDNN_FUNCTIONS(CXR_RESOLVE_CUDNN)
#undef CXR_RESOLVE_CUDNN
  const std::size_t cudnn_version = api.cudnn.cudnnGetVersion();
  CXR_CHECK(cudnn_version >= static_cast<std::size_t>(kMinCudnnVersion) && cudnn_version / 10000 == CUDNN_MAJOR,
            "--kernels library needs cuDNN ", version_string(kMinCudnnVersion), " or newer (major version ",
            CUDNN_MAJOR, ", as built against ", version_string(CUDNN_VERSION), "), found ",
            version_string(cudnn_version), ". Update cuDNN, or run with --kernels cxr");

  tried.clear();
  const std::string lt_soname = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
#ifdef CXR_CUBLASLT_PATH
  const std::string lt_path = CXR_CUBLASLT_PATH;
#else
  const std::string lt_path;
#endif
  void* lt = open_first({lt_soname, lt_path}, tried);
  CXR_CHECK(lt, "--kernels library needs cuBLASLt ", CUBLAS_VER_MAJOR, ".x (", lt_soname, ", part of the CUDA ",
            "toolkit), not loaded: ", tried, ". Run with --kernels cxr");
#define CXR_RESOLVE_LT(name) resolve(lt, lt_soname.c_str(), #name, api.lt.name);
  CXR_CUBLASLT_FUNCTIONS(CXR_RESOLVE_LT)
#undef CXR_RESOLVE_LT
  const std::size_t lt_version = api.lt.cublasLtGetVersion();
  CXR_CHECK(lt_version / 10000 == CUBLAS_VER_MAJOR, "--kernels library needs cuBLASLt ", CUBLAS_VER_MAJOR,
            ".x (as built), found ", version_string(lt_version));
  api.description = "cuDNN " + version_string(cudnn_version) + " (" + cudnn_soname + "), cuBLASLt " +
                    version_string(lt_version) + " (" + lt_soname + ")";
  return api;
}

}  // namespace

std::string version_string(std::size_t v) {
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

const LibraryApi& library_api() {
  static std::once_flag once;
  static std::optional<LibraryApi> api;
  static std::string failure;
  std::call_once(once, [] {
    try {
      api = load();
    } catch (const Error& e) {
      failure = e.what();
    }
  });
  if (!api) throw Error(failure);
  return *api;
}

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  CXR_FAIL("--kernels library: ", what, " failed: ", library_api().cudnn.cudnnGetErrorString(status), " (status ",
           static_cast<int>(status), ")");
}

void check_cublas(cublasStatus_t status, const char* what) {
  CXR_CHECK(status == CUBLAS_STATUS_SUCCESS, "--kernels library: ", what, " failed: cuBLAS status ",
            static_cast<int>(status));
}

}  // namespace cxr::library
