/* The per-read chain of the crossbar datapath, fused: read noise, ADC, shift-and-add.
 *
 * One block of array partial sums has dims (O, R, M, S, Z): R input passes and S weight slices are
 * summed by shift-and-add into acc (O, M, Z). A call runs one contiguous chunk of it (a range of passes
 * and of rows M). For every element, in this order:
 *
 *   v = c + z * sqrt(var)          read noise; z: the block's counter-based normal sample (below)
 *   v = clamp(round(v * inv[s]), lo, hi)     the ADC (round half to even)
 *   acc = acc + v * f[r, s]        shift-and-add, over r then s, in increasing order
 *
 * Every step is one IEEE float32 operation (built with -ffp-contract=off: no fused multiply-add), so
 * cimkit.sim.fused's pure-torch chain, which runs the same operations in the same order, gives the
 * same numbers. The normal sample of flat element e of a block of n elements (q = ceil(n/4)) is the
 * one cimkit.sim.rng.CounterNormal.sample draws: the SplitMix64 finalizer of counter0 + i picks a
 * 16-bit quarter as an index into a quantile table, i = e/2 (low 16 bits of 32-bit word e%2) for
 * e < 2q, i = (e-2q)/2 (high 16 bits) after. Elements with zero variance read no noise (their sample
 * would be multiplied by zero), so their hash is skipped.
 *
 * Partial sums may instead come as exact integer products (cimkit.sim.intmm.IntTerms): J int32 terms per
 * element, dims (O, Rc, Mc, J, S, Z); the first nsig weighted and summed in float32 (plus shift * col_sums)
 * are the signal, the next nvar the read-noise variance.
 *
 * This file is compiled by cimkit.sim.fused at first use; it needs only libm (and OpenMP when the
 * compiler has it).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t mix64(uint64_t z) {
  z *= 0x9E3779B97F4A7C15ULL;
  z ^= z >> 30;
  z *= 0xBF58476D1CE4E5B9ULL;
  z ^= z >> 27;
  z *= 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static inline float bf16_to_float(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

#define CHUNK 256

/* nz[i] = z_e * sqrt(sd2[i]) for flat elements e = e_first + i (count <= CHUNK) of one side of the 2q
 * boundary: element k of a side takes 32-bit word k of the hash sequence, i.e. word k % 2 of hash k / 2 */
static void noise_of(float *restrict nz, const float *restrict sd2, int64_t count, int64_t e_first, int upper,
                     int64_t two_q, uint64_t counter0, const float *restrict table) {
  if (count <= 0) return;
  const int64_t k0 = upper ? e_first - two_q : e_first;
  const int shift = upper ? 16 : 0;
  const int64_t first_hash = k0 >> 1, hashes = ((k0 + count - 1) >> 1) - first_hash + 1;
  uint64_t h[CHUNK / 2 + 1];
  for (int64_t i = 0; i < hashes; i++) h[i] = mix64(counter0 + (uint64_t)(first_hash + i));
  const uint32_t *restrict words = (const uint32_t *)h + (k0 & 1);  /* little-endian: word 0 = low half */
  for (int64_t i = 0; i < count; i++) nz[i] = table[(words[i] >> shift) & 0xFFFFu] * sqrtf(sd2[i]);
}

/* out[i] = sum_k (float)t[k * stride + i] * (float)w[k] (+ cs[i] * (float)shift), k < count: the terms
 * summed in increasing k, every step one IEEE float32 operation (the int32 terms are exact in float32 up
 * to 2^24: tiles of up to 1,032 rows; beyond, each is rounded once) */
static void combine(float *restrict out, const int32_t *restrict t, int64_t stride, int64_t count,
                    const double *restrict w, const float *restrict cs, double shift, int64_t cnt) {
  const float w0 = (float)w[0];
  for (int64_t i = 0; i < cnt; i++) out[i] = (float)t[i] * w0;
  for (int64_t k = 1; k < count; k++) {
    const int32_t *restrict tk = t + k * stride;
    const float wk = (float)w[k];
    for (int64_t i = 0; i < cnt; i++) out[i] = out[i] + (float)tk[i] * wk;
  }
  if (cs) {
    const float sh = (float)shift;
    for (int64_t i = 0; i < cnt; i++) out[i] = out[i] + cs[i] * sh;
  }
}

/* One chunk c (O, Rc, Mc, S, Z) of a block (O, Rg, Mg, S, Z): passes r0 + [0, Rc) and rows m0 + [0, Mc);
 * element indices (for the noise sample) and f (Rg, S) are the block's, acc (O, Mg, Z) is the block's.
 * var_kind: 0 no read noise (unless nvar > 0), 1 float32 variances, 2 bfloat16 variances (dims of c).
 * terms: NULL, or the chunk's integer terms (O, Rc, Mc, J, S, Z) with weights tw (J): c is then unused, the
 * signal is terms [0, nsig) plus shift * col_sums (O, S*Z; NULL: none), the variance terms [nsig, nsig + nvar).
 * inv_step: the inverse ADC step of pass r and slice s at inv_step[r * inv_rs + s] (inv_rs = 0: one per
 * slice; S: one per pass and slice), r the block's pass; NULL for no ADC. acc NULL: write the chunk's values back into c instead of
 * summing them (f unused), for datapaths whose stages are observed between noise and sum. Work items (a row of acc, a run of up to CHUNK columns) are
 * spread over the OpenMP threads (the runtime torch uses, so its threads are reused, not fought). */
void cim_read_chain(float *c, const void *var, int var_kind, int64_t O, int64_t Rc, int64_t Mc, int64_t S,
                    int64_t Z, int64_t Rg, int64_t r0, int64_t Mg, int64_t m0, uint64_t counter0,
                    const float *table, const float *inv_step, int64_t inv_rs, float lo, float hi, const float *f,
                    float *acc, const int32_t *terms, int64_t J, int64_t nsig, int64_t nvar, const double *tw,
                    const float *col_sums, double shift) {
  const int64_t n = O * Rg * Mg * S * Z;
  const int64_t two_q = 2 * ((n + 3) / 4);
  const float *var32 = (const float *)var;
  const uint16_t *var16 = (const uint16_t *)var;
  const int64_t runs = (Z + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
  for (int64_t item = 0; item < O * Mc * runs; item++) {
    float buf[CHUNK], sd2[CHUNK], nz[CHUNK];
    const int64_t j = item / runs, zc = (item % runs) * CHUNK;
    const int64_t cnt = Z - zc < CHUNK ? Z - zc : CHUNK;
    const int64_t o = j / Mc, m = j % Mc;
    float *restrict a = acc ? acc + (o * Mg + m0 + m) * Z + zc : NULL;
    for (int64_t r = 0; r < Rc; r++) {
      for (int64_t s = 0; s < S; s++) {
        const int64_t el = (((o * Rc + r) * Mc + m) * S + s) * Z + zc;
        const int64_t e = (((o * Rg + r0 + r) * Mg + m0 + m) * S + s) * Z + zc;
        const float fs = f ? f[(r0 + r) * S + s] : 0.0f;
        const int32_t *tp = terms ? terms + ((((o * Rc + r) * Mc + m) * J) * S + s) * Z + zc : NULL;
        const float *cs = tp && col_sums ? col_sums + o * S * Z + s * Z + zc : NULL;
        uint32_t any = 0;
        if (var_kind || nvar) {
          if (nvar) {
            combine(sd2, tp + nsig * S * Z, S * Z, nvar, tw + nsig, NULL, 0.0, cnt);
          } else if (var_kind == 1) {
            memcpy(sd2, var32 + el, cnt * sizeof(float));
          } else {
            for (int64_t i = 0; i < cnt; i++) sd2[i] = bf16_to_float(var16[el + i]);
          }
          for (int64_t i = 0; i < cnt; i++) any |= sd2[i] != 0.0f;
          if (any) {  /* all-zero inputs read no current and no noise: skip their samples */
            const int64_t low = e >= two_q ? 0 : (e + cnt <= two_q ? cnt : two_q - e);
            noise_of(nz, sd2, low, e, 0, two_q, counter0, table);
            noise_of(nz + low, sd2 + low, cnt - low, e + low, 1, two_q, counter0, table);
          }
        }
        const float inv = inv_step ? inv_step[(r0 + r) * inv_rs + s] : 1.0f;
        const int adc = inv_step != NULL;
        /* the partial sum, its noise, the ADC and the shift-and-add in one loop (per element: the signal as
         * combine() builds it, then v + noise, clamp(round(v * inv)), acc + v * fs) */
#define READ_LOOP(SIGNAL, OUT)                          \
  for (int64_t i = 0; i < cnt; i++) {                   \
    float v = SIGNAL;                                   \
    if (any) v = v + nz[i];                             \
    if (adc) {                                          \
      v = nearbyintf(v * inv);                          \
      v = v < lo ? lo : v;                              \
      v = v > hi ? hi : v;                              \
    }                                                   \
    OUT;                                                \
  }
        if (!a) {  /* the values back into the chunk (never with terms) */
          float *restrict cv = c + el;
          READ_LOOP(cv[i], cv[i] = v)
          continue;
        }
        const int64_t sz = S * Z;
        const float w0 = tp ? (float)tw[0] : 0.0f, w1 = tp && nsig > 1 ? (float)tw[1] : 0.0f;
        const float w2 = tp && nsig > 2 ? (float)tw[2] : 0.0f;
        if (!tp) {
          const float *restrict cv = c + el;
          READ_LOOP(cv[i], a[i] = a[i] + v * fs)
        } else if (nsig > 3) {
          combine(buf, tp, sz, nsig, tw, cs, shift, cnt);
          READ_LOOP(buf[i], a[i] = a[i] + v * fs)
        } else if (cs) {
          combine(buf, tp, sz, nsig, tw, cs, shift, cnt);
          READ_LOOP(buf[i], a[i] = a[i] + v * fs)
        } else if (nsig == 1) {
          READ_LOOP((float)tp[i] * w0, a[i] = a[i] + v * fs)
        } else if (nsig == 2) {
          READ_LOOP((float)tp[i] * w0 + (float)tp[sz + i] * w1, a[i] = a[i] + v * fs)
        } else {
          READ_LOOP((float)tp[i] * w0 + (float)tp[sz + i] * w1 + (float)tp[2 * sz + i] * w2, a[i] = a[i] + v * fs)
        }
#undef READ_LOOP
      }
    }
  }
}
