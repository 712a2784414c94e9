// Lower bound on the cost of per-read noise for speed goal B (issue 2), measured natively.
//
// Goal B reads 256 x 1024 outputs x 8 row tiles x 32 passes = 67,108,864 array outputs per forward,
// each needing a fresh Gaussian sample before its ADC. This loop does only that work, fused and in
// registers: a SplitMix64 hash gives four 16-bit indices into a normal quantile table, then
// y + sigma * z is rounded and clamped as an 8-bit ADC would. No matmul, no variance product.
//
// Build and run:  g++ -O3 -march=native -fopenmp read_noise_floor.cpp -o read_noise_floor && ./read_noise_floor
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

static inline uint64_t splitmix64(uint64_t z) {
  z *= 0x9E3779B97F4A7C15ULL;
  z ^= z >> 30; z *= 0xBF58476D1CE4E5B9ULL;
  z ^= z >> 27; z *= 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int main() {
  const size_t n = 256UL * 1024 * 8 * 32;
  std::vector<float> table(65536), y(n), sigma(n), out(n);
  for (int k = 0; k < 65536; k++) table[k] = static_cast<float>(k - 32768) / 10000.f;  // values do not matter here
  for (size_t i = 0; i < n; i++) { y[i] = static_cast<float>(i % 384); sigma[i] = 0.5f; }
  for (int rep = 0; rep < 4; rep++) {
    auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static)
    for (size_t q = 0; q < n / 4; q++) {
      uint64_t h = splitmix64(q + (static_cast<uint64_t>(rep) << 40));
      for (int j = 0; j < 4; j++) {
        size_t i = 4 * q + j;
        float v = std::nearbyint((y[i] + sigma[i] * table[(h >> (16 * j)) & 0xFFFF]) * 0.66f);
        out[i] = v < 0.f ? 0.f : (v > 255.f ? 255.f : v);
      }
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%zu noisy reads + ADC: %.1f ms (%.2f ns per read)\n", n, ms, ms * 1e6 / n);
  }
  double check = 0;
  for (size_t i = 0; i < n; i += 4096) check += out[i];
  std::printf("checksum %.0f\n", check);
}
