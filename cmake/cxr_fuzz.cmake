# libFuzzer targets (fuzz/fuzz_<target>.cpp), built when CXR_FUZZ is ON (`cmake --preset fuzz`).
#
# Only the code under test is built here, into cxr_fuzz_lib: the metadata/split readers, the
# image decode and resize path, safetensors, and what those need (tensor/, the emulated
# device runtime that tensor/ links against). Everything is compiled by clang with
# -fsanitize=fuzzer-no-link,address,undefined; each target links -fsanitize=fuzzer.
# `cmake --build --preset fuzz` builds the `cxr_fuzz` target: every fuzzer, nothing else.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CXR_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++ "
                      "or `cmake --preset fuzz`; found ${CMAKE_CXX_COMPILER_ID}")
endif()

set(CXR_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

set(CXR_FUZZ_LIB_SOURCES
  data/csv.cpp data/metadata.cpp data/labels.cpp data/report.cpp data/dataset.cpp data/random.cpp
  data/splits.cpp data/image_io.cpp data/jpeg_decode.cpp data/dicom_decode.cpp data/resize.cpp
  data/formats.cpp data/format_chexpert.cpp data/format_mimic.cpp data/format_padchest.cpp data/format_rsna.cpp
  data/format_vindr.cpp data/format_folders.cpp
  checkpoint/safetensors.cpp)
file(GLOB CXR_FUZZ_TENSOR_SOURCES CONFIGURE_DEPENDS tensor/*.cpp)
file(GLOB CXR_FUZZ_TENSOR_CU CONFIGURE_DEPENDS tensor/cuda/*.cu)
cxr_emulated_sources(CXR_FUZZ_TENSOR_WRAPPED ${CXR_FUZZ_TENSOR_CU})
add_library(cxr_fuzz_lib STATIC ${CXR_FUZZ_LIB_SOURCES} ${CXR_FUZZ_TENSOR_SOURCES} ${CXR_FUZZ_TENSOR_WRAPPED}
            ${CXR_EMU_RUNTIME_SOURCES})
cxr_host_target_options(cxr_fuzz_lib)
target_compile_definitions(cxr_fuzz_lib PUBLIC CXR_CUDA_EMULATION=1)
target_compile_options(cxr_fuzz_lib PUBLIC ${CXR_FUZZ_FLAGS} -Wno-unknown-warning-option)  # -Wno-restrict is GCC's

file(GLOB CXR_FUZZ_SOURCES CONFIGURE_DEPENDS fuzz/fuzz_*.cpp)
add_custom_target(cxr_fuzz)
foreach(src IN LISTS CXR_FUZZ_SOURCES)
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE cxr_fuzz_lib)
  target_compile_options(${name} PRIVATE ${CXR_WARNINGS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  add_dependencies(cxr_fuzz ${name})
endforeach()

# The writer of fuzz/corpus/safetensors (a plain program: no libFuzzer main).
add_executable(seed_safetensors fuzz/seed_safetensors.cpp)
target_link_libraries(seed_safetensors PRIVATE cxr_fuzz_lib)
target_link_options(seed_safetensors PRIVATE -fsanitize=address,undefined)
# The writer of fuzz/corpus/dicom_decode (DCMTK, through the tests' DICOM writer).
add_executable(seed_dicom fuzz/seed_dicom.cpp tests/data/dicom_writer.cpp)
target_link_libraries(seed_dicom PRIVATE cxr_fuzz_lib)
target_link_options(seed_dicom PRIVATE -fsanitize=address,undefined)
