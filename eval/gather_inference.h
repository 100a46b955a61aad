// Distributed evaluation: each rank runs the model over its contiguous shard of a split, then
// every rank's predictions are concatenated in rank order, which is the split's order, so the
// metrics computed from them are those of a single-process evaluation (per-image outputs do
// not depend on the batch's other images in eval mode). Used by train_cxr train's validation
// and train_cxr eval under mpirun.
#pragma once

#include "dist/communicator.h"
#include "eval/evaluate.h"

namespace cxr {

InferenceResult gather_inference(dist::Communicator& comm, const InferenceResult& local);

}  // namespace cxr
