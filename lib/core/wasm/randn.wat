;; PyTorch's CPU randn (float32, 16 elements or more) in WebAssembly SIMD: the mt19937 twist, tempering and
;; uniform conversion of lib/core/torch_generator.ts four words at a time, and PyTorch's float32 Box-Muller
;; (normal_fill_16_AVX2 with log256_ps and sincos256_ps of avx_mathfun.h, as lib/core/_avx_mathfun.ts writes it) on
;; the eight pairs of every block, in f32x4 vectors of four pairs. Every float32 operation of the AVX2 code is one
;; f32x4 operation here, rounded the same way.
;; WebAssembly has no deterministic fused multiply-add, so where GCC fused a product into the following sum, the
;; operands go to f64x2 (the product of two float32 values is exact in float64), the sum is rounded to float64 and then
;; to float32 (demote): the same rounding as one fused float32 operation on every operand randn meets (see
;; fmaFloat32 in lib/core/_avx_mathfun.ts, which test/core/avx_mathfun.test.ts checks on every 24-bit uniform). The
;; JavaScript path evaluates the same expressions, so both paths give the same bits, and PyTorch's.
;;
;; Speed (bench/randn.ts measures it): a fused step costs a promote, a multiply, an add, a demote and a promote per
;; f64x2 half, about 14 cycles from operand to result, and the logarithm chains nine of them, the sine and cosine six.
;; Carried through that chain one block at a time, the processor waits on every rounding. So $boxMuller goes over all
;; the blocks of a run step by step instead, in passes: each pass computes a few steps for every vector of the run,
;; reading its operands from scratch arrays in memory and writing its results there (float64 halves as float64, so no
;; pass converts them again), and its iterations, independent of one another, overlap in the processor. What limits
;; the kernel then is mostly throughput: on independent operands one core sustains a fused step per half about every
;; 1.5 cycles (measured on AMD Zen 3), and the fused steps alone take about half of the kernel's time. A pass holds few
;; values, which also suits JavaScriptCore's code generator (Bun), whose habits decide the rest:
;; - constant globals are hoisted out of a loop and pinned in xmm registers; x64 has 16, enough for the few constants
;;   and values of one pass, so the passes read their constants with global.get and spill nothing;
;; - of the layouts tried (one, two or three Horner steps per pass, or all eight; one, two or four float64 halves per
;;   iteration; the third part of pi/4 in pass c or in its own pass; the last step of the logarithm with the selection
;;   of sine and cosine or in its own pass), the one below measured fastest;
;; - a vector shift by a constant costs four instructions (the count goes through a general register each time), so
;;   left shifts are products by a power of two, which give the same word;
;; - i32x4.trunc_sat_f32x4_s, which x86 lacks and the engine builds from seven instructions, is avoided;
;; - v128.store64_lane and v128.load64_zero go through a general register or a blend, so a half's two float32 values
;;   are written with a whole v128.store (the next half's store overwrites its upper eight bytes) and read with a whole
;;   v128.load (f64x2.promote_low_f32x4 ignores the upper eight).
;;
;; Build: `npm run build:wasm` (wabt's wat2wasm with SIMD enabled) writes the bytes, base64-encoded, to
;; lib/core/_randn_wasm_bytes.ts; test/core/randn_wasm.test.ts checks that they equal a fresh build of this file.
;;
;; | symbol            | here             | meaning                                                               |
;; |-------------------|------------------|-----------------------------------------------------------------------|
;; | mt[0..624)        | state (i32)      | the mt19937 words                                                     |
;; | u_k               | uniforms (f32)   | (temper(mt[k]) & 0xFFFFFF) / 2^24, made at each twist                 |
;; | u1 = 1 - u_j      | $u1              | the logarithm's argument, in [2^-24, 1]                               |
;; | u1 = 2^e m        | $e, $m           | exponent and mantissa, m in [sqrt(1/2), sqrt(2)) after the adjustment |
;; | t = m - 1         | $t, $t2 = t^2    | ln u1 = t - t^2/2 + t^3 P(t) + e ln 2, ln 2 = q1 + q2                 |
;; | y                 | $y               | the logarithm's Horner value: P(t), then t^3 P(t) - t^2/2             |
;; | theta = 2 pi u_j+8| $theta           | float32(2 pi) u, in [0, 2 pi)                                         |
;; | j                 | $octantF, $octant| the even octant (trunc(theta 4/pi) + 1) & ~1; $octant: 0x4B000000 + j |
;; | r                 | $r, r^2 ($rr_0)  | theta - j pi/4, in [-pi/4, pi/4], in three float32 parts of pi/4      |
;; | c, s              | $c_0, $s_0       | the cosine and sine polynomials' Horner values                        |
;; | rho               | $rho             | sqrt(-2 ln u1)                                                        |
;; | x_0, x_1          | f64x2 locals     | two float64 halves (two lanes each) of the same pass iteration        |
;; | $at, $h           | byte offsets     | into the float32 scratch arrays (16 per vector), into the float64     |
;; |                   |                  | ones (16 per half, 32 per iteration); lane p = 8 block + j            |
;;
;; Memory layout (bytes), exported as globals so the loader never hard-codes it:
;;   [0, 2496)        state, 624 x i32
;;   [2560, 5056)     uniforms, 624 x f32
;;   [5120, 5184)     one block of 16 uniforms that straddles a twist, 16 x f32
;;   [8192, 23552)    $boxMuller's float64 scratch arrays, 2560 bytes each (one run: at most 39 blocks x 8 lanes x 8):
;;                    8192 t, 10752 y, 13312 r, 15872 r^2, 18432 c, 20992 s
;;   [23552, 35072)   its float32 scratch arrays, 1280 bytes each (39 x 8 x 4, and the 8 bytes that the last pair's
;;                    whole-vector store writes beyond): 23552 t, 24832 e, 26112 y, 27392 j, 28672 r (before the third
;;                    part of pi/4), 29952 the word 0x4B000000 + j, 31232 cos r - 1, 32512 sin r, 33792 rho
;;   [65536, 327680)  output, 65536 x f32
(module
  (memory (export "memory") 5 5)
  (global (export "stateOffset") i32 (i32.const 0))
  (global (export "uniformsOffset") i32 (i32.const 2560))
  (global (export "outputOffset") i32 (i32.const 65536))
  (global (export "outputCapacity") i32 (i32.const 65536))

  ;; mt19937 and its tempering
  (global $UPPER_MASK v128 (v128.const i32x4 0x80000000 0x80000000 0x80000000 0x80000000))
  (global $LOWER_MASK v128 (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff))
  (global $MATRIX_A v128 (v128.const i32x4 0x9908b0df 0x9908b0df 0x9908b0df 0x9908b0df))
  (global $ONES v128 (v128.const i32x4 1 1 1 1))
  (global $TEMPER_B v128 (v128.const i32x4 0x9d2c5680 0x9d2c5680 0x9d2c5680 0x9d2c5680))
  (global $TEMPER_C v128 (v128.const i32x4 0xefc60000 0xefc60000 0xefc60000 0xefc60000))
  (global $TWO_POW_7 v128 (v128.const i32x4 0x80 0x80 0x80 0x80))
  (global $TWO_POW_15 v128 (v128.const i32x4 0x8000 0x8000 0x8000 0x8000))
  (global $LOW_24_BITS v128 (v128.const i32x4 0xffffff 0xffffff 0xffffff 0xffffff))
  (global $TWO_POW_MINUS_24 v128 (v128.const f32x4 0x1p-24 0x1p-24 0x1p-24 0x1p-24))
  ;; integer and bit-field constants of avx_mathfun.h
  (global $TWOS v128 (v128.const i32x4 2 2 2 2))
  (global $TWO_POW_23 v128 (v128.const f32x4 0x1p23 0x1p23 0x1p23 0x1p23))
  (global $TWO_POW_29 v128 (v128.const i32x4 0x20000000 0x20000000 0x20000000 0x20000000))
  (global $FOURS v128 (v128.const i32x4 4 4 4 4))
  (global $EXPONENT_BIAS_MINUS_ONE v128 (v128.const i32x4 126 126 126 126))
  (global $NOT_EXPONENT v128 (v128.const i32x4 0x807fffff 0x807fffff 0x807fffff 0x807fffff))
  (global $HALF_BITS v128 (v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000))
  ;; float32 constants of normal_fill_16_AVX2 and avx_mathfun.h, each the float32 the C source rounds to, as an exact
  ;; hexadecimal float
  (global $ZERO v128 (v128.const f32x4 0 0 0 0))
  (global $ONE v128 (v128.const f32x4 1 1 1 1))
  (global $HALF v128 (v128.const f32x4 0.5 0.5 0.5 0.5))
  (global $MINUS_TWO v128 (v128.const f32x4 -2 -2 -2 -2))
  (global $TWO_PI v128 (v128.const f32x4 0x1.921fb6p+2 0x1.921fb6p+2 0x1.921fb6p+2 0x1.921fb6p+2))
  (global $SQRT_HALF v128 (v128.const f32x4 0x1.6a09e6p-1 0x1.6a09e6p-1 0x1.6a09e6p-1 0x1.6a09e6p-1))
  (global $LOG_Q1 v128 (v128.const f32x4 -0x1.bd0106p-13 -0x1.bd0106p-13 -0x1.bd0106p-13 -0x1.bd0106p-13))
  (global $LOG_Q2 v128 (v128.const f32x4 0x1.63p-1 0x1.63p-1 0x1.63p-1 0x1.63p-1))
  (global $FOUR_OVER_PI v128 (v128.const f32x4 0x1.45f306p+0 0x1.45f306p+0 0x1.45f306p+0 0x1.45f306p+0))
  (global $MINUS_DP1 v128 (v128.const f32x4 -0x1.92p-1 -0x1.92p-1 -0x1.92p-1 -0x1.92p-1))
  (global $MINUS_DP2 v128 (v128.const f32x4 -0x1.fb4p-13 -0x1.fb4p-13 -0x1.fb4p-13 -0x1.fb4p-13))
  ;; the float32 constants that enter fused steps, as float64 (the same values)
  (global $MINUS_DP3 v128 (v128.const f64x2 -0x1.4442d2p-25 -0x1.4442d2p-25))
  (global $LOG_P0 v128 (v128.const f64x2 0x1.204376p-4 0x1.204376p-4))
  (global $LOG_P1 v128 (v128.const f64x2 -0x1.d7a37p-4 -0x1.d7a37p-4))
  (global $LOG_P2 v128 (v128.const f64x2 0x1.de4a34p-4 0x1.de4a34p-4))
  (global $LOG_P3 v128 (v128.const f64x2 -0x1.fcba9ep-4 -0x1.fcba9ep-4))
  (global $LOG_P4 v128 (v128.const f64x2 0x1.23d37ep-3 0x1.23d37ep-3))
  (global $LOG_P5 v128 (v128.const f64x2 -0x1.555ca0p-3 -0x1.555ca0p-3))
  (global $LOG_P6 v128 (v128.const f64x2 0x1.999d58p-3 0x1.999d58p-3))
  (global $LOG_P7 v128 (v128.const f64x2 -0x1.fffff8p-3 -0x1.fffff8p-3))
  (global $LOG_P8 v128 (v128.const f64x2 0x1.555554p-2 0x1.555554p-2))
  (global $COS_P0 v128 (v128.const f64x2 0x1.99eb9cp-16 0x1.99eb9cp-16))
  (global $COS_P1 v128 (v128.const f64x2 -0x1.6c0c34p-10 -0x1.6c0c34p-10))
  (global $COS_P2 v128 (v128.const f64x2 0x1.55554ap-5 0x1.55554ap-5))
  (global $SIN_P0 v128 (v128.const f64x2 -0x1.9943f2p-13 -0x1.9943f2p-13))
  (global $SIN_P1 v128 (v128.const f64x2 0x1.11073cp-7 0x1.11073cp-7))
  (global $SIN_P2 v128 (v128.const f64x2 -0x1.555546p-3 -0x1.555546p-3))
  (global $HALF_64 v128 (v128.const f64x2 0.5 0.5))

  ;; The mt19937 state transition of all 624 words, then the uniforms of the new words:
  ;; mt[i] = mt[i + 397 mod 624] ^ (y >>> 1) ^ (-(y & 1) & 0x9908b0df), y = (mt[i] & 0x80000000) | (mt[i + 1] & 0x7fffffff)
  ;; Here -(y & 1) & 0x9908b0df is written (y & 1) * 0x9908b0df (the same word), and in the tempering x << k is written
  ;; x * 2^k (the same low 32 bits): one instruction each, where JavaScriptCore moves a vector shift's count through a
  ;; general register every time (i32x4.shr_u has no such replacement).
  (func $twist
    (local $i i32)
    (local $y v128)
    (local $word v128)
    (local $low24 v128)
    (local $upperMask v128)
    (local $lowerMask v128)
    (local $matrixA v128)
    (local $ones v128)
    (local.set $upperMask (global.get $UPPER_MASK))
    (local.set $lowerMask (global.get $LOWER_MASK))
    (local.set $matrixA (global.get $MATRIX_A))
    (local.set $ones (global.get $ONES))
    ;; 1. words 0..223, four at a time (byte offsets: word index times 4): mt[i + 397] and mt[i + 1] are still old
    (local.set $i (i32.const 0))
    (loop $first
      (local.set $y
        (v128.or
          (v128.and (v128.load (local.get $i)) (local.get $upperMask))
          (v128.and (v128.load offset=4 (local.get $i)) (local.get $lowerMask))))
      (v128.store (local.get $i)
        (v128.xor
          (v128.xor (v128.load offset=1588 (local.get $i)) (i32x4.shr_u (local.get $y) (i32.const 1)))
          (i32x4.mul (v128.and (local.get $y) (local.get $ones)) (local.get $matrixA))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $first (i32.lt_u (local.get $i) (i32.const 896))))
    ;; 2. words 224..226, one at a time (a fourth lane would be word 227, which reads the new mt[0])
    (call $twistWord (i32.const 224) (i32.const 621))
    (call $twistWord (i32.const 225) (i32.const 622))
    (call $twistWord (i32.const 226) (i32.const 623))
    ;; 3. words 227..622, four at a time: mt[i - 227] is a new word, written at least 227 words earlier
    (local.set $i (i32.const 908))
    (loop $second
      (local.set $y
        (v128.or
          (v128.and (v128.load (local.get $i)) (local.get $upperMask))
          (v128.and (v128.load offset=4 (local.get $i)) (local.get $lowerMask))))
      (v128.store (local.get $i)
        (v128.xor
          (v128.xor (v128.load (i32.sub (local.get $i) (i32.const 908))) (i32x4.shr_u (local.get $y) (i32.const 1)))
          (i32x4.mul (v128.and (local.get $y) (local.get $ones)) (local.get $matrixA))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $second (i32.lt_u (local.get $i) (i32.const 2492))))
    ;; 4. word 623, from mt[623], the new mt[0] and mt[396]
    (call $twistWord (i32.const 623) (i32.const 396))
    ;; 5. temper every word, and keep u = (word & 0xFFFFFF) / 2^24 (exact in float32)
    (local.set $i (i32.const 0))
    (loop $temper
      (local.set $word (v128.load (local.get $i)))
      (local.set $word (v128.xor (local.get $word) (i32x4.shr_u (local.get $word) (i32.const 11))))
      (local.set $word
        (v128.xor
          (local.get $word)
          (v128.and (i32x4.mul (local.get $word) (global.get $TWO_POW_7)) (global.get $TEMPER_B))))
      (local.set $word
        (v128.xor
          (local.get $word)
          (v128.and (i32x4.mul (local.get $word) (global.get $TWO_POW_15)) (global.get $TEMPER_C))))
      (local.set $word (v128.xor (local.get $word) (i32x4.shr_u (local.get $word) (i32.const 18))))
      (local.set $low24 (v128.and (local.get $word) (global.get $LOW_24_BITS)))
      (v128.store offset=2560 (local.get $i)
        (f32x4.mul (f32x4.convert_i32x4_s (local.get $low24)) (global.get $TWO_POW_MINUS_24)))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $temper (i32.lt_u (local.get $i) (i32.const 2496)))))

  ;; One word of the twist: mt[i] from mt[i], mt[i + 1 mod 624] and mt[far] (word indices).
  (func $twistWord (param $i i32) (param $far i32)
    (local $y i32)
    (local.set $y
      (i32.or
        (i32.and (i32.load (i32.shl (local.get $i) (i32.const 2))) (i32.const 0x80000000))
        (i32.and
          (i32.load (i32.shl (i32.rem_u (i32.add (local.get $i) (i32.const 1)) (i32.const 624)) (i32.const 2)))
          (i32.const 0x7fffffff))))
    (i32.store (i32.shl (local.get $i) (i32.const 2))
      (i32.xor
        (i32.xor (i32.load (i32.shl (local.get $far) (i32.const 2))) (i32.shr_u (local.get $y) (i32.const 1)))
        (i32.and (i32.sub (i32.const 0) (i32.and (local.get $y) (i32.const 1))) (i32.const 0x9908b0df)))))

  ;; Box-Muller on $blocks blocks of 16 uniforms (at most 39: the blocks of one twist) from byte address $from, written
  ;; as float32 from byte address $to, as normal_fill_16_AVX2 computes it: in each block, for j < 8, u1 = 1 - u[j],
  ;; rho = sqrt(-2 ln u1), theta = float32(2 pi) u[j + 8], out[j] = rho cos theta, out[j + 8] = rho sin theta.
  ;; Passes a-h go over all the blocks step by step (see "Speed" above), through the scratch arrays of "Memory layout";
  ;; passes over f32x4 vectors advance $at by 16 bytes, passes over float64 halves take two halves (four lanes) per
  ;; iteration and advance $h by 32 bytes ($at by 16 where they also read or write float32 pairs).
  (func $boxMuller (param $from i32) (param $to i32) (param $blocks i32)
    (local $at i32) (local $h i32) (local $in i32) (local $end i32) (local $end64 i32)
    (local $below v128) (local $c_0 v128) (local $c_1 v128) (local $cos v128) (local $e v128) (local $m v128)
    (local $octant v128) (local $octantF v128) (local $polyMask v128) (local $q v128) (local $r v128) (local $r_0 v128)
    (local $r_1 v128) (local $rho v128) (local $rr_0 v128) (local $rr_1 v128) (local $s_0 v128) (local $s_1 v128)
    (local $sin v128) (local $sinPart1 v128) (local $sinPart2 v128) (local $t v128) (local $t2 v128) (local $t_0 v128)
    (local $t_1 v128) (local $theta v128) (local $u1 v128) (local $y v128) (local $y_0 v128) (local $y_1 v128)
    (local.set $end (i32.shl (local.get $blocks) (i32.const 5)))
    (local.set $end64 (i32.shl (local.get $blocks) (i32.const 6)))
    ;; a. per f32x4 vector of u[0..8): 1. u1 = 1 - u and its exponent and mantissa, e = (bits >> 23) - 126 (exact);
    ;;    where the mantissa m under 1/2's exponent is below sqrt(1/2), e - 1 and t = 2 m - 1, else t = m - 1
    ;;    (log256_ps); t kept as float32 and as float64 halves. $in: the vector's byte offset in the blocks,
    ;;    64 block + 16 (j >= 4); $h: that of its first float64 half
    (local.set $at (i32.const 0))
    (loop $logInputs
      (local.set $in (i32.sub (i32.shl (local.get $at) (i32.const 1)) (i32.and (local.get $at) (i32.const 16))))
      (local.set $h (i32.shl (local.get $at) (i32.const 1)))
      (local.set $u1 (f32x4.sub (global.get $ONE) (v128.load (i32.add (local.get $from) (local.get $in)))))
      (local.set $e
        (f32x4.convert_i32x4_s
          (i32x4.sub (i32x4.shr_u (local.get $u1) (i32.const 23)) (global.get $EXPONENT_BIAS_MINUS_ONE))))
      (local.set $m (v128.or (v128.and (local.get $u1) (global.get $NOT_EXPONENT)) (global.get $HALF_BITS)))
      (local.set $below (f32x4.lt (local.get $m) (global.get $SQRT_HALF)))
      (v128.store offset=24832 (local.get $at)
        (f32x4.sub (local.get $e) (v128.and (global.get $ONE) (local.get $below))))
      (local.set $t
        (f32x4.add (f32x4.sub (local.get $m) (global.get $ONE)) (v128.and (local.get $m) (local.get $below))))
      (v128.store offset=23552 (local.get $at) (local.get $t))
      (v128.store offset=8192 (local.get $h) (f64x2.promote_low_f32x4 (local.get $t)))
      (v128.store offset=8208 (local.get $h)
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $t) (local.get $t))))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br_if $logInputs (i32.lt_u (local.get $at) (local.get $end))))
    ;; b. per two float64 halves: 2. P(t) by Horner's rule, y = p0 t + p1, then y = y t + p_k for k = 2..8: each step
    ;;    a fused multiply-add in float64, rounded to float32 (demote) and back to float64 (promote) for the next step;
    ;;    two steps per pass. Steps 1 and 2:
    (local.set $h (i32.const 0))
    (loop $horner12
      (local.set $t_0 (v128.load offset=8192 (local.get $h)))
      (local.set $t_1 (v128.load offset=8208 (local.get $h)))
      (local.set $y_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (global.get $LOG_P0) (local.get $t_0)) (global.get $LOG_P1)))))
      (local.set $y_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (global.get $LOG_P0) (local.get $t_1)) (global.get $LOG_P1)))))
      (v128.store offset=10752 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_0) (local.get $t_0)) (global.get $LOG_P2)))))
      (v128.store offset=10768 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_1) (local.get $t_1)) (global.get $LOG_P2)))))
      (local.set $h (i32.add (local.get $h) (i32.const 32)))
      (br_if $horner12 (i32.lt_u (local.get $h) (local.get $end64))))
    ;; b. Horner steps k = 3, 4
    (local.set $h (i32.const 0))
    (loop $horner34
      (local.set $t_0 (v128.load offset=8192 (local.get $h)))
      (local.set $t_1 (v128.load offset=8208 (local.get $h)))
      (local.set $y_0 (v128.load offset=10752 (local.get $h)))
      (local.set $y_1 (v128.load offset=10768 (local.get $h)))
      (local.set $y_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_0) (local.get $t_0)) (global.get $LOG_P3)))))
      (local.set $y_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_1) (local.get $t_1)) (global.get $LOG_P3)))))
      (v128.store offset=10752 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_0) (local.get $t_0)) (global.get $LOG_P4)))))
      (v128.store offset=10768 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_1) (local.get $t_1)) (global.get $LOG_P4)))))
      (local.set $h (i32.add (local.get $h) (i32.const 32)))
      (br_if $horner34 (i32.lt_u (local.get $h) (local.get $end64))))
    ;; b. Horner steps k = 5, 6
    (local.set $h (i32.const 0))
    (loop $horner56
      (local.set $t_0 (v128.load offset=8192 (local.get $h)))
      (local.set $t_1 (v128.load offset=8208 (local.get $h)))
      (local.set $y_0 (v128.load offset=10752 (local.get $h)))
      (local.set $y_1 (v128.load offset=10768 (local.get $h)))
      (local.set $y_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_0) (local.get $t_0)) (global.get $LOG_P5)))))
      (local.set $y_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_1) (local.get $t_1)) (global.get $LOG_P5)))))
      (v128.store offset=10752 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_0) (local.get $t_0)) (global.get $LOG_P6)))))
      (v128.store offset=10768 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_1) (local.get $t_1)) (global.get $LOG_P6)))))
      (local.set $h (i32.add (local.get $h) (i32.const 32)))
      (br_if $horner56 (i32.lt_u (local.get $h) (local.get $end64))))
    ;; b. Horner steps k = 7, 8; step 8 is rounded to float32 only (step 3 reads it as float32)
    (local.set $h (i32.const 0))
    (local.set $at (i32.const 0))
    (loop $horner78
      (local.set $t_0 (v128.load offset=8192 (local.get $h)))
      (local.set $t_1 (v128.load offset=8208 (local.get $h)))
      (local.set $y_0 (v128.load offset=10752 (local.get $h)))
      (local.set $y_1 (v128.load offset=10768 (local.get $h)))
      (local.set $y_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_0) (local.get $t_0)) (global.get $LOG_P7)))))
      (local.set $y_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_1) (local.get $t_1)) (global.get $LOG_P7)))))
      (v128.store offset=26112 (local.get $at)
        (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_0) (local.get $t_0)) (global.get $LOG_P8))))
      (v128.store offset=26120 (local.get $at)
        (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $y_1) (local.get $t_1)) (global.get $LOG_P8))))
      (local.set $h (i32.add (local.get $h) (i32.const 32)))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br_if $horner78 (i32.lt_u (local.get $h) (local.get $end64))))
    ;; c. per f32x4 vector of u[8..16): 4. theta = float32(2 pi) u; the even octant j = (trunc(x) + 1) & ~1 of
    ;;    x = theta 4/pi, in float32 as 2 floor((trunc(x) + 1) / 2), every step exact (i32x4.trunc_sat_f32x4_s would
    ;;    take seven x86 instructions); j + 2^23 in float32 is the word 0x4B000000 + j, whose low 24 bits are j's, so
    ;;    (j & 2), (j & 4) and ((j - 2) & 4) read the same from it (j - 2 = -2 included); r = theta - j DP1 - j DP2
    ;;    (exact products, one rounding each)
    (local.set $at (i32.const 0))
    (loop $thetaInputs
      (local.set $in (i32.sub (i32.shl (local.get $at) (i32.const 1)) (i32.and (local.get $at) (i32.const 16))))
      (local.set $theta
        (f32x4.mul (global.get $TWO_PI) (v128.load offset=32 (i32.add (local.get $from) (local.get $in)))))
      (local.set $octantF
        (f32x4.floor
          (f32x4.mul
            (f32x4.add (f32x4.trunc (f32x4.mul (local.get $theta) (global.get $FOUR_OVER_PI))) (global.get $ONE))
            (global.get $HALF))))
      (local.set $octantF (f32x4.add (local.get $octantF) (local.get $octantF)))
      (v128.store offset=27392 (local.get $at) (local.get $octantF))
      (v128.store offset=29952 (local.get $at) (f32x4.add (local.get $octantF) (global.get $TWO_POW_23)))
      (local.set $r (f32x4.add (local.get $theta) (f32x4.mul (local.get $octantF) (global.get $MINUS_DP1))))
      (v128.store offset=28672 (local.get $at)
        (f32x4.add (local.get $r) (f32x4.mul (local.get $octantF) (global.get $MINUS_DP2))))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br_if $thetaInputs (i32.lt_u (local.get $at) (local.get $end))))
    ;; d. per two float64 halves: 4. r = r - j DP3 fused, kept in float64; 5. r^2 rounded
    (local.set $h (i32.const 0))
    (local.set $at (i32.const 0))
    (loop $reduction
      (local.set $r_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (v128.load offset=27392 (local.get $at))) (global.get $MINUS_DP3))
              (f64x2.promote_low_f32x4 (v128.load offset=28672 (local.get $at)))))))
      (local.set $r_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (v128.load offset=27400 (local.get $at))) (global.get $MINUS_DP3))
              (f64x2.promote_low_f32x4 (v128.load offset=28680 (local.get $at)))))))
      (v128.store offset=13312 (local.get $h) (local.get $r_0))
      (v128.store offset=13328 (local.get $h) (local.get $r_1))
      (v128.store offset=15872 (local.get $h)
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $r_0) (local.get $r_0)))))
      (v128.store offset=15888 (local.get $h)
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $r_1) (local.get $r_1)))))
      (local.set $h (i32.add (local.get $h) (i32.const 32)))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br_if $reduction (i32.lt_u (local.get $h) (local.get $end64))))
    ;; e. per two float64 halves: 5. cos r = ((c0 r^2 + c1) r^2 + c2) r^2 r^2 - r^2/2 + 1 and
    ;;    sin r = ((s0 r^2 + s1) r^2 + s2) r^2 r + r from r^2 rounded: multiply-adds fused, the products y r^2 rounded.
    ;;    Here c = (c0 r^2 + c1) r^2 + c2 and s = (s0 r^2 + s1) r^2 + s2
    (local.set $h (i32.const 0))
    (loop $polynomials
      (local.set $rr_0 (v128.load offset=15872 (local.get $h)))
      (local.set $rr_1 (v128.load offset=15888 (local.get $h)))
      (local.set $c_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $COS_P0) (local.get $rr_0)) (global.get $COS_P1)))))
      (local.set $c_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $COS_P0) (local.get $rr_1)) (global.get $COS_P1)))))
      (local.set $s_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $SIN_P0) (local.get $rr_0)) (global.get $SIN_P1)))))
      (local.set $s_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $SIN_P0) (local.get $rr_1)) (global.get $SIN_P1)))))
      (v128.store offset=18432 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $c_0) (local.get $rr_0)) (global.get $COS_P2)))))
      (v128.store offset=18448 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $c_1) (local.get $rr_1)) (global.get $COS_P2)))))
      (v128.store offset=20992 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $s_0) (local.get $rr_0)) (global.get $SIN_P2)))))
      (v128.store offset=21008 (local.get $h)
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $s_1) (local.get $rr_1)) (global.get $SIN_P2)))))
      (local.set $h (i32.add (local.get $h) (i32.const 32)))
      (br_if $polynomials (i32.lt_u (local.get $h) (local.get $end64))))
    ;; f. per two float64 halves: 5. the products c r^2 and s r^2, rounded; cos r - 1 = c r^2 r^2 - r^2/2 and
    ;;    sin r = s r^2 r + r, fused, kept as float32
    (local.set $h (i32.const 0))
    (local.set $at (i32.const 0))
    (loop $sinCos
      (local.set $rr_0 (v128.load offset=15872 (local.get $h)))
      (local.set $rr_1 (v128.load offset=15888 (local.get $h)))
      (local.set $r_0 (v128.load offset=13312 (local.get $h)))
      (local.set $r_1 (v128.load offset=13328 (local.get $h)))
      (local.set $c_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=18432 (local.get $h)) (local.get $rr_0)))))
      (local.set $c_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=18448 (local.get $h)) (local.get $rr_1)))))
      (local.set $s_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=20992 (local.get $h)) (local.get $rr_0)))))
      (local.set $s_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.mul (v128.load offset=21008 (local.get $h)) (local.get $rr_1)))))
      (v128.store offset=31232 (local.get $at)
        (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.mul (local.get $c_0) (local.get $rr_0))
            (f64x2.mul (local.get $rr_0) (global.get $HALF_64)))))
      (v128.store offset=31240 (local.get $at)
        (f32x4.demote_f64x2_zero
          (f64x2.sub
            (f64x2.mul (local.get $c_1) (local.get $rr_1))
            (f64x2.mul (local.get $rr_1) (global.get $HALF_64)))))
      (v128.store offset=32512 (local.get $at)
        (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $s_0) (local.get $r_0)) (local.get $r_0))))
      (v128.store offset=32520 (local.get $at)
        (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $s_1) (local.get $r_1)) (local.get $r_1))))
      (local.set $h (i32.add (local.get $h) (i32.const 32)))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br_if $sinCos (i32.lt_u (local.get $h) (local.get $end64))))
    ;; g. per f32x4 vector: 3. y = float32(y t), then y t^2 + e q1 fused in float64 halves, - t^2/2 (exact halving),
    ;;    ln u1 = (t + y) + e q2 (exact product), rho = sqrt(-2 ln u1)
    (local.set $at (i32.const 0))
    (loop $logarithms
      (local.set $t (v128.load offset=23552 (local.get $at)))
      (local.set $e (v128.load offset=24832 (local.get $at)))
      (local.set $y (f32x4.mul (local.get $t) (v128.load offset=26112 (local.get $at))))
      (local.set $t2 (f32x4.mul (local.get $t) (local.get $t)))
      (local.set $q (f32x4.mul (local.get $e) (global.get $LOG_Q1)))
      (local.set $y
        (f64x2.replace_lane 1
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (local.get $y)) (f64x2.promote_low_f32x4 (local.get $t2)))
              (f64x2.promote_low_f32x4 (local.get $q))))
          (f64x2.extract_lane 0
            (f32x4.demote_f64x2_zero
              (f64x2.add
                (f64x2.mul
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $y) (local.get $y)))
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $t2) (local.get $t2))))
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $q) (local.get $q))))))))
      (local.set $y (f32x4.sub (local.get $y) (f32x4.mul (local.get $t2) (global.get $HALF))))
      (v128.store offset=33792 (local.get $at)
        (f32x4.sqrt
          (f32x4.mul
            (global.get $MINUS_TWO)
            (f32x4.add (f32x4.add (local.get $t) (local.get $y)) (f32x4.mul (local.get $e) (global.get $LOG_Q2))))))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br_if $logarithms (i32.lt_u (local.get $at) (local.get $end))))
    ;; h. per f32x4 vector: 5. cos r = (cos r - 1) + 1; 6. select as sincos256_ps does (where j & 2 the polynomials swap
    ;;    roles; the subtractions leave +0 in the unused parts), then the signs: sin negated where j & 4, cos where
    ;;    (j - 2) & 4 is clear, the bit moved to the sign by a product with 2^29 (a shift by 29, as in $twist);
    ;;    7. out[j] = rho cos theta, out[j + 8] = rho sin theta, each stored as fmadd(n, std = 1, mean = 0): + 0 turns
    ;;    -0 into +0 and changes nothing else
    (local.set $at (i32.const 0))
    (loop $outputs
      (local.set $in (i32.sub (i32.shl (local.get $at) (i32.const 1)) (i32.and (local.get $at) (i32.const 16))))
      (local.set $rho (v128.load offset=33792 (local.get $at)))
      (local.set $cos (f32x4.add (v128.load offset=31232 (local.get $at)) (global.get $ONE)))
      (local.set $sin (v128.load offset=32512 (local.get $at)))
      (local.set $octant (v128.load offset=29952 (local.get $at)))
      (local.set $polyMask (i32x4.eq (v128.and (local.get $octant) (global.get $TWOS)) (global.get $ZERO)))
      (local.set $sinPart2 (v128.and (local.get $sin) (local.get $polyMask)))
      (local.set $sinPart1 (v128.andnot (local.get $cos) (local.get $polyMask)))
      (local.set $sin (f32x4.sub (local.get $sin) (local.get $sinPart2)))
      (local.set $cos (f32x4.sub (local.get $cos) (local.get $sinPart1)))
      (local.set $cos
        (v128.xor
          (f32x4.add (local.get $cos) (local.get $sin))
          (i32x4.mul
            (v128.andnot (global.get $FOURS) (i32x4.sub (local.get $octant) (global.get $TWOS)))
            (global.get $TWO_POW_29))))
      (local.set $sin
        (v128.xor
          (f32x4.add (local.get $sinPart1) (local.get $sinPart2))
          (i32x4.mul (v128.and (local.get $octant) (global.get $FOURS)) (global.get $TWO_POW_29))))
      (v128.store (i32.add (local.get $to) (local.get $in))
        (f32x4.add (f32x4.mul (local.get $rho) (local.get $cos)) (global.get $ZERO)))
      (v128.store offset=32 (i32.add (local.get $to) (local.get $in))
        (f32x4.add (f32x4.mul (local.get $rho) (local.get $sin)) (global.get $ZERO)))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br_if $outputs (i32.lt_u (local.get $at) (local.get $end)))))

  ;; Fill the output with $blocks blocks of 16 normals, starting at stream position $index (624: a twist is due), in
  ;; PyTorch's order, and return the new position. Blocks that lie within the current words are transformed in place;
  ;; one that straddles a twist is gathered into the block buffer first.
  (func (export "fillNormalBlocks") (param $index i32) (param $blocks i32) (result i32)
    (local $to i32)
    (local $run i32)
    (local $k i32)
    (local.set $to (i32.const 65536))
    (block $done
      (loop $runs
        (br_if $done (i32.eqz (local.get $blocks)))
        ;; whole blocks left in the current words, at most $blocks
        (local.set $run (i32.shr_u (i32.sub (i32.const 624) (local.get $index)) (i32.const 4)))
        (if (i32.gt_u (local.get $run) (local.get $blocks)) (then (local.set $run (local.get $blocks))))
        (if (local.get $run)
          (then
            (call $boxMuller
              (i32.add (i32.const 2560) (i32.shl (local.get $index) (i32.const 2))) (local.get $to) (local.get $run))
            (local.set $index (i32.add (local.get $index) (i32.shl (local.get $run) (i32.const 4)))))
          (else
            (local.set $run (i32.const 1))
            (local.set $k (i32.const 0))
            (loop $gather
              (if (i32.ge_u (local.get $index) (i32.const 624))
                (then
                  (call $twist)
                  (local.set $index (i32.const 0))))
              (f32.store offset=5120 (i32.shl (local.get $k) (i32.const 2))
                (f32.load offset=2560 (i32.shl (local.get $index) (i32.const 2))))
              (local.set $index (i32.add (local.get $index) (i32.const 1)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br_if $gather (i32.lt_u (local.get $k) (i32.const 16))))
            (call $boxMuller (i32.const 5120) (local.get $to) (i32.const 1))))
        (local.set $to (i32.add (local.get $to) (i32.shl (local.get $run) (i32.const 6))))
        (local.set $blocks (i32.sub (local.get $blocks) (local.get $run)))
        (br $runs)))
    (local.get $index)))
