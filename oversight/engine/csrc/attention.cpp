// Causal attention over packed rows, for CPUs and small heads (oversight/kernels.py).
//
// q [M, H, D]; k, v [N, Hkv, D] (any strides, unit stride over D); H a multiple of Hkv; D one
// of 8, 16, 32, 64. Row r's keys are tokens kv_start[r] .. kv_start[r+1] - 1 in position
// order, its queries q_start[r] .. q_start[r+1] - 1 (q_start absent: q_start = kv_start), and
// query i sees keys 0 .. q_pos[i] of its row.
//
// One task per (row, kv head): its keys and values are copied once, transposed to [D, keys], so
// that a vector holds 8 keys' values of one feature: scores, their gradients and the key and value
// gradients are then one fused multiply-add per 8 keys and feature, at any head width. The copies
// are zero-padded to whole vectors and the padding's scores masked, so no loop has a scalar tail.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t W = 8;  // floats per vector: one AVX register
typedef float vec __attribute__((vector_size(W * sizeof(float))));
inline int64_t padded(int64_t n) { return (n + W - 1) / W * W; }
inline vec load(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vec v) { std::memcpy(p, &v, sizeof v); }
inline float hsum(vec v) {
  float s = 0.f;
  for (int64_t i = 0; i < W; ++i) s += v[i];
  return s;
}

struct Plan {
  const int64_t *kv_start, *q_start, *q_pos;
  int64_t rows, H, Hkv, D;
};

// q_start absent: the queries are the keys' own tokens (q_start = kv_start)
Plan plan(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
          const torch::Tensor& kv_start, const std::optional<torch::Tensor>& q_start_or_none,
          const torch::Tensor& q_pos) {
  const torch::Tensor& q_start = q_start_or_none.has_value() ? *q_start_or_none : kv_start;
  for (const auto* x : {&q, &k, &v}) {
    TORCH_CHECK(x->dim() == 3 && x->stride(2) == 1, "q, k, v: [tokens, heads, D], unit stride");
    TORCH_CHECK(x->scalar_type() == torch::kFloat && x->device().is_cpu(), "fp32 CPU tensors");
  }
  TORCH_CHECK(k.sizes() == v.sizes() && q.size(2) == k.size(2) && q.size(1) % k.size(1) == 0);
  for (const auto* x : {&kv_start, &q_start, &q_pos})
    TORCH_CHECK(x->scalar_type() == torch::kLong && x->is_contiguous(), "int64 plan tensors");
  TORCH_CHECK(kv_start.numel() == q_start.numel() && q_pos.numel() == q.size(0));
  return {kv_start.data_ptr<int64_t>(), q_start.data_ptr<int64_t>(), q_pos.data_ptr<int64_t>(),
          kv_start.numel() - 1, q.size(1), k.size(1), q.size(2)};
}

// x[start + t, h, d] -> out[d * Lp + t], zero for L <= t < Lp
void transpose_in(const torch::Tensor& x, int64_t start, int64_t L, int64_t Lp, int64_t h,
                  std::vector<float>& out) {
  const float* p = x.data_ptr<float>();
  const int64_t st = x.stride(0), sh = x.stride(1), D = x.size(2);
  out.assign(D * Lp, 0.f);
  for (int64_t t = 0; t < L; ++t)
    for (int64_t d = 0; d < D; ++d) out[d * Lp + t] = p[(start + t) * st + h * sh + d];
}

// Task `task` is row r and kv head hk: its L keys start at token ks, and its keys and values
// are copied into kT, vT, transposed and padded to Lp. False: the row has no keys or no queries.
struct Task {
  int64_t r, hk, ks, L, Lp;
};
inline bool begin_task(const Plan& P, int64_t task, const torch::Tensor& k,
                       const torch::Tensor& v, Task& T, std::vector<float>& kT,
                       std::vector<float>& vT) {
  T.r = task / P.Hkv, T.hk = task % P.Hkv;
  T.ks = P.kv_start[T.r], T.L = P.kv_start[T.r + 1] - T.ks, T.Lp = padded(T.L);
  if (T.L == 0 || P.q_start[T.r] == P.q_start[T.r + 1]) return false;
  transpose_in(k, T.ks, T.L, T.Lp, T.hk, kT);
  transpose_in(v, T.ks, T.L, T.Lp, T.hk, vT);
  return true;
}

// s[j] = scale * q . k_j for j < n, and a large negative number up to padded(n), whose exp is 0
// (-ffast-math assumes no infinities). Returns max_j s[j].
template <int D>
inline float scores(const float* q, const float* kT, int64_t Lp, int64_t n, float scale,
                    float* s) {
  float qs[D];
  for (int d = 0; d < D; ++d) qs[d] = q[d] * scale;
  const int64_t np = padded(n);
  vec m = vec{} - 1e30f;
  for (int64_t j = 0; j < np; j += W) {
    vec acc{};
    for (int d = 0; d < D; ++d) acc += qs[d] * load(kT + d * Lp + j);
    store(s + j, acc);
  }
  for (int64_t j = n; j < np; ++j) s[j] = -1e30f;
  for (int64_t j = 0; j < np; j += W) {
    const vec x = load(s + j);
    m = x > m ? x : m;
  }
  float mx = m[0];
  for (int64_t i = 1; i < W; ++i) mx = m[i] > mx ? m[i] : mx;
  return mx;
}

template <int D>
void forward_task(const Plan& P, const torch::Tensor& k, const torch::Tensor& v, const float* qp,
                  int64_t qs0, int64_t qs1, float scale, float* op, float* lp, int64_t task,
                  std::vector<float>& kT, std::vector<float>& vT, std::vector<float>& s) {
  Task T;
  if (!begin_task(P, task, k, v, T, kT, vT)) return;
  const int64_t r = T.r, hk = T.hk, Lp = T.Lp, G = P.H / P.Hkv;
  s.resize(Lp);
  for (int64_t h = hk * G; h < (hk + 1) * G; ++h)
    for (int64_t i = P.q_start[r]; i < P.q_start[r + 1]; ++i) {
      const int64_t n = P.q_pos[i] + 1, np = padded(n);
      const float m = scores<D>(qp + i * qs0 + h * qs1, kT.data(), Lp, n, scale, s.data());
      float sum = 0.f;
      for (int64_t j = 0; j < np; ++j) {
        s[j] = std::exp(s[j] - m);
        sum += s[j];
      }
      vec acc[D]{};
      for (int64_t j = 0; j < np; j += W) {
        const vec p = load(s.data() + j);
        for (int d = 0; d < D; ++d) acc[d] += p * load(vT.data() + d * Lp + j);
      }
      float* oi = op + (i * P.H + h) * D;
      for (int d = 0; d < D; ++d) oi[d] = hsum(acc[d]) / sum;
      lp[i * P.H + h] = m + std::log(sum);
    }
}

// With p = softmax(s): dv_j += p_j dO, ds_j = p_j (dO . v_j - dO . O), dq = scale sum_j ds_j k_j,
// dk_j += scale ds_j q; p is recomputed from the forward's log-sum-exp.
template <int D>
void backward_task(const Plan& P, const torch::Tensor& k, const torch::Tensor& v,
                   const float* qp, int64_t qs0, int64_t qs1, const float* gp, const float* op,
                   const float* lp, float scale, float* dqp, float* dkp, float* dvp, int64_t task,
                   std::vector<float>& kT, std::vector<float>& vT, std::vector<float>& dkT,
                   std::vector<float>& dvT, std::vector<float>& s) {
  Task T;
  if (!begin_task(P, task, k, v, T, kT, vT)) return;
  const int64_t r = T.r, hk = T.hk, ks = T.ks, L = T.L, Lp = T.Lp, G = P.H / P.Hkv, Hkv = P.Hkv;
  dkT.assign(D * Lp, 0.f), dvT.assign(D * Lp, 0.f);
  s.resize(Lp);
  for (int64_t h = hk * G; h < (hk + 1) * G; ++h)
    for (int64_t i = P.q_start[r]; i < P.q_start[r + 1]; ++i) {
      const int64_t n = P.q_pos[i] + 1, np = padded(n);
      const float* qi = qp + i * qs0 + h * qs1;
      const float *gi = gp + (i * P.H + h) * D, *oi = op + (i * P.H + h) * D;
      scores<D>(qi, kT.data(), Lp, n, scale, s.data());
      const float l = lp[i * P.H + h];
      for (int64_t j = 0; j < np; ++j) s[j] = std::exp(s[j] - l);  // probabilities
      float delta = 0.f, qd[D];
      for (int d = 0; d < D; ++d) delta += gi[d] * oi[d], qd[d] = qi[d] * scale;
      vec dq[D]{};
      for (int64_t j = 0; j < np; j += W) {
        const vec p = load(s.data() + j);
        vec dp{};
        for (int d = 0; d < D; ++d) {
          float* dvd = dvT.data() + d * Lp + j;
          store(dvd, load(dvd) + p * gi[d]);
          dp += gi[d] * load(vT.data() + d * Lp + j);
        }
        const vec ds = p * (dp - delta);
        for (int d = 0; d < D; ++d) {
          float* dkd = dkT.data() + d * Lp + j;
          store(dkd, load(dkd) + ds * qd[d]);
          dq[d] += ds * load(kT.data() + d * Lp + j);
        }
      }
      float* dqi = dqp + (i * P.H + h) * D;
      for (int d = 0; d < D; ++d) dqi[d] = hsum(dq[d]) * scale;
    }
  for (int64_t t = 0; t < L; ++t)
    for (int64_t d = 0; d < D; ++d) {
      dkp[((ks + t) * Hkv + hk) * D + d] = dkT[d * Lp + t];
      dvp[((ks + t) * Hkv + hk) * D + d] = dvT[d * Lp + t];
    }
}

// Calls f(std::integral_constant<int, D>) for the supported head widths.
template <typename F>
void dispatch(int64_t D, F f) {
  switch (D) {
    case 8: return f(std::integral_constant<int, 8>{});
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    case 64: return f(std::integral_constant<int, 64>{});
  }
  TORCH_CHECK(false, "head width ", D, " is not supported (8, 16, 32 or 64)");
}

}  // namespace

std::tuple<torch::Tensor, torch::Tensor> forward(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
    const torch::Tensor& kv_start, const std::optional<torch::Tensor>& q_start,
    const torch::Tensor& q_pos, double scale) {
  const Plan P = plan(q, k, v, kv_start, q_start, q_pos);
  auto o = torch::empty({q.size(0), P.H, P.D}, q.options());
  auto lse = torch::empty({q.size(0), P.H}, q.options());
  dispatch(P.D, [&](auto D) {
    at::parallel_for(0, P.rows * P.Hkv, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> kT, vT, s;
      for (int64_t task = begin; task < end; ++task)
        forward_task<D>(P, k, v, q.data_ptr<float>(), q.stride(0), q.stride(1), scale,
                        o.data_ptr<float>(), lse.data_ptr<float>(), task, kT, vT, s);
    });
  });
  return {o, lse};
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> backward(
    const torch::Tensor& grad_o, const torch::Tensor& q, const torch::Tensor& k,
    const torch::Tensor& v, const torch::Tensor& o, const torch::Tensor& lse,
    const torch::Tensor& kv_start, const std::optional<torch::Tensor>& q_start,
    const torch::Tensor& q_pos, double scale) {
  const Plan P = plan(q, k, v, kv_start, q_start, q_pos);
  TORCH_CHECK(grad_o.is_contiguous() && o.is_contiguous() && lse.is_contiguous());
  // zeros: rows without keys or queries leave their gradients untouched
  auto dq = torch::zeros({q.size(0), P.H, P.D}, q.options());
  auto dk = torch::zeros({k.size(0), P.Hkv, P.D}, q.options());
  auto dv = torch::zeros({k.size(0), P.Hkv, P.D}, q.options());
  dispatch(P.D, [&](auto D) {
    at::parallel_for(0, P.rows * P.Hkv, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> kT, vT, dkT, dvT, s;
      for (int64_t task = begin; task < end; ++task)
        backward_task<D>(P, k, v, q.data_ptr<float>(), q.stride(0), q.stride(1),
                         grad_o.data_ptr<float>(), o.data_ptr<float>(), lse.data_ptr<float>(),
                         scale, dq.data_ptr<float>(), dk.data_ptr<float>(), dv.data_ptr<float>(),
                         task, kT, vT, dkT, dvT, s);
    });
  });
  return {dq, dk, dv};
}

// Registered with the dispatcher (not as a Python module): a call costs no Python, and
// torch.compile sees ops with the fake implementations of oversight/kernels.py.
TORCH_LIBRARY(oversight, m) {
  m.def(
      "packed_attention(Tensor q, Tensor k, Tensor v, Tensor kv_start, Tensor? q_start, "
      "Tensor q_pos, float scale) -> (Tensor, Tensor)");
  m.def(
      "packed_attention_backward(Tensor grad, Tensor q, Tensor k, Tensor v, Tensor o, "
      "Tensor lse, Tensor kv_start, Tensor? q_start, Tensor q_pos, float scale) "
      "-> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(oversight, CPU, m) {
  m.impl("packed_attention", &forward);
  m.impl("packed_attention_backward", &backward);
}
