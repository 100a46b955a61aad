// symbols.h: names of code addresses, for the counters' report (internal, counting build).
// Asks binutils' addr2line about the executable (the symbol table names functions, also those
// in anonymous namespaces that dladdr cannot see; -g1 line tables name source lines).
// Results are cached; an address that cannot be resolved keeps its hexadecimal offset.
#pragma once

#include <string>
#include <vector>

namespace cuda_emu::counting {

// "cxr::(anonymous namespace)::relu_kernel<float>" (demangled, without the parameter list).
std::string function_name(const void* code);
// "kernels/cuda/batch_norm.cu:120" for each address (same order).
std::vector<std::string> source_lines(const std::vector<const void*>& code);

}  // namespace cuda_emu::counting
