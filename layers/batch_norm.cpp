// BatchNorm2d layer (see batch_norm.h).
#include "layers/batch_norm.h"

#include <vector>

#include "dist/communicator.h"
#include "kernels/batch_norm_sync.h"

namespace cxr {

namespace {
thread_local dist::Communicator* t_sync_comm = nullptr;
}  // namespace

SyncBatchNormScope::SyncBatchNormScope(dist::Communicator* comm) : previous_(t_sync_comm) { t_sync_comm = comm; }
SyncBatchNormScope::~SyncBatchNormScope() { t_sync_comm = previous_; }
dist::Communicator* sync_batch_norm_comm() { return t_sync_comm; }

BatchNorm2d::BatchNorm2d(std::int64_t num_features, BatchNormOptions o) : o_(o) {
  CXR_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive, found ", num_features);
  if (o.activation) {
    const std::optional<BnActivation> act = fusable_activation(*o.activation);
    CXR_CHECK(act.has_value(), "BatchNorm2d: a fused activation must be relu or silu, found ",
              activation_name(*o.activation));
    act_ = *act;
  }
  weight_ = &register_parameter("weight", Tensor::full({num_features}, 1.f), /*weight_decay=*/false);
  bias_ = &register_parameter("bias", Tensor::zeros({num_features}), /*weight_decay=*/false);
  running_mean_ = &register_buffer("running_mean", Tensor::zeros({num_features}));
  running_var_ = &register_buffer("running_var", Tensor::full({num_features}, 1.f));
  num_batches_ = &register_buffer("num_batches_tracked", Tensor::zeros({}, DType::I32));
}

BatchNormArgs BatchNorm2d::op_args() const {
  return BatchNormArgs{weight_->value, bias_->value, *running_mean_, *running_var_, act_, o_.momentum, o_.eps,
                       training()};
}

Tensor BatchNorm2d::forward(const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  if (!training()) {
    const Tensor y = batch_norm2d_eval(act_, x, weight_->value, bias_->value, *running_mean_, *running_var_, o_.eps);
    keep_forward(x, Tensor(), Tensor());
    return y;
  }
  if (dist::Communicator* comm = sync_batch_norm_comm()) return forward_sync(x, *comm);
  BatchNormOutput r =
      batch_norm2d_train(act_, x, weight_->value, bias_->value, *running_mean_, *running_var_, o_.momentum, o_.eps);
  keep_forward(x, r.saved_mean, r.saved_invstd);
  return r.y;
}

// The global batch's statistics from every rank's (count, mean, biased var) per channel:
// combined in rank order with Chan et al.'s pairwise formula, in double, identical on every rank.
Tensor BatchNorm2d::forward_sync(const Tensor& x, dist::Communicator& comm) {
  const std::int64_t C = x.size(1), count = x.numel() / C;
  const BatchStats local = batch_norm2d_batch_stats(x);
  std::vector<double> mine(static_cast<std::size_t>(1 + 2 * C));
  mine[0] = static_cast<double>(count);
  const std::vector<float> m = local.mean.to_vector(), v = local.var.to_vector();
  for (std::int64_t c = 0; c < C; ++c) mine[1 + c] = m[c], mine[1 + C + c] = v[c];
  const std::vector<double> all = comm.all_gather(mine);
  std::vector<double> n_acc(C, 0.0), mean_acc(C, 0.0), m2_acc(C, 0.0);
  for (int r = 0; r < comm.size(); ++r) {
    const double* p = &all[static_cast<std::size_t>(r) * mine.size()];
    const double nb = p[0];
    for (std::int64_t c = 0; c < C; ++c) {
      const double na = n_acc[c], n = na + nb, delta = p[1 + c] - mean_acc[c];
      if (n == 0) continue;
      mean_acc[c] += delta * nb / n;
      m2_acc[c] += p[1 + C + c] * nb + delta * delta * na * nb / n;
      n_acc[c] = n;
    }
  }
  const double total = n_acc.empty() ? 0.0 : n_acc[0];
  CXR_CHECK(total > 1, "BatchNorm2d (--sync-bn): ", total, " values per channel over all ranks; expected more than 1");
  std::vector<float> gmean(C), gvar(C);
  std::vector<float> rm = running_mean_->to_vector(), rv = running_var_->to_vector();
  const double mom = o_.momentum;
  for (std::int64_t c = 0; c < C; ++c) {
    gmean[c] = static_cast<float>(mean_acc[c]);
    gvar[c] = static_cast<float>(m2_acc[c] / total);
    // The running statistics with the global count (unbiased variance), as SyncBatchNorm.
    rm[c] = static_cast<float>((1 - mom) * rm[c] + mom * mean_acc[c]);
    rv[c] = static_cast<float>((1 - mom) * rv[c] + mom * (m2_acc[c] / (total - 1)));
  }
  const Tensor mean_t = Tensor::from_vector(gmean, {C}).to(x.device());
  const Tensor var_t = Tensor::from_vector(gvar, {C}).to(x.device());
  Tensor no_mean, no_var;  // the running statistics are updated above, not by the op
  BatchNormOutput r = batch_norm2d_train_from_stats(act_, x, mean_t, var_t, weight_->value, bias_->value, no_mean,
                                                    no_var, o_.momentum, o_.eps);
  running_mean_->copy_(Tensor::from_vector(rm, {C}));
  running_var_->copy_(Tensor::from_vector(rv, {C}));
  keep_forward(x, r.saved_mean, r.saved_invstd);
  sync_count_ = static_cast<std::int64_t>(total);
  sync_comm_ = &comm;
  return r.y;
}

// dx with the global batch's sums; dweight and dbias this rank's part (the gradient all-reduce
// adds the parts).
Tensor BatchNorm2d::backward_sync(const Tensor& dy, const Tensor& x, dist::Communicator& comm) {
  const BatchNormGradSums local =
      batch_norm2d_backward_reduce(act_, dy, x, weight_->value, bias_->value, saved_mean_, saved_invstd_);
  const std::int64_t C = x.size(1);
  Tensor both = Tensor::empty({2 * C}, DType::F32, x.device());
  both.narrow(0, 0, C).copy_(local.sum_g);
  both.narrow(0, C, C).copy_(local.sum_gxhat);
  comm.all_reduce_sum(both);
  const Tensor dx = batch_norm2d_backward_elemt(act_, dy, x, weight_->value, bias_->value, saved_mean_,
                                                saved_invstd_, both.narrow(0, 0, C).contiguous(),
                                                both.narrow(0, C, C).contiguous(), sync_count_);
  if (weight_->trainable) weight_->accumulate_grad(local.sum_gxhat);
  if (bias_->trainable) bias_->accumulate_grad(local.sum_g);
  return dx;
}

Tensor BatchNorm2d::forward_from_stats(const Tensor& x_in, const Tensor& mean, const Tensor& var) {
  CXR_CHECK(training(), "BatchNorm2d.forward_from_stats: batch statistics are for training mode; in eval mode call "
                        "forward()");
  const Tensor x = x_in.contiguous();
  BatchNormOutput r = batch_norm2d_train_from_stats(act_, x, mean, var, weight_->value, bias_->value,
                                                    *running_mean_, *running_var_, o_.momentum, o_.eps);
  keep_forward(x, r.saved_mean, r.saved_invstd);
  return r.y;
}

void BatchNorm2d::keep_forward(const Tensor& x, const Tensor& saved_mean, const Tensor& saved_invstd) {
  sync_count_ = 0;  // forward_sync sets it again after this call
  saved_mean_ = saved_mean;
  saved_invstd_ = saved_invstd;
  if (!saved_mean.defined()) {
    // Frozen statistics: backward needs only x (batch_norm2d_eval_backward).
    save_for_backward(keeps_for_backward() ? x : Tensor());
    return;
  }
  // A training forward: count the batch; backward needs x and the batch statistics.
  if (num_batches_->is_cpu()) num_batches_->data<std::int32_t>()[0] += 1;
  else ++pending_batches_;
  save_for_backward(x);
}

void BatchNorm2d::sync_buffers() {
  if (pending_batches_ == 0) return;
  if (!num_batches_->is_cpu()) {
    Tensor host = num_batches_->cpu();
    host.data<std::int32_t>()[0] += static_cast<std::int32_t>(pending_batches_);
    num_batches_->copy_(host);
  } else {
    num_batches_->data<std::int32_t>()[0] += static_cast<std::int32_t>(pending_batches_);
  }
  pending_batches_ = 0;
}

Tensor BatchNorm2d::backward(const Tensor& dy_in) {
  const Tensor x = saved_input("BatchNorm2d");
  const Tensor dy = dy_in.contiguous();
  if (sync_count_ > 0 && saved_mean_.defined()) {  // after a synchronised training forward
    const Tensor dx = backward_sync(dy, x, *sync_comm_);
    save_for_backward(Tensor());
    saved_mean_ = saved_invstd_ = Tensor();
    sync_count_ = 0;
    return dx;
  }
  // Saved statistics: after a training forward; none: after an eval forward.
  const BatchNormGrads g =
      saved_mean_.defined()
          ? batch_norm2d_backward(act_, dy, x, weight_->value, bias_->value, saved_mean_, saved_invstd_)
          : batch_norm2d_eval_backward(act_, dy, x, weight_->value, bias_->value, *running_mean_, *running_var_,
                                       o_.eps);
  save_for_backward(Tensor());
  saved_mean_ = saved_invstd_ = Tensor();
  if (weight_->trainable) weight_->accumulate_grad(g.dweight);
  if (bias_->trainable) bias_->accumulate_grad(g.dbias);
  return g.dx;
}

}  // namespace cxr
