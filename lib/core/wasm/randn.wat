;; PyTorch's CPU randn (float32, 16 elements or more) in WebAssembly SIMD: the mt19937 twist, tempering and
;; uniform conversion of lib/core/torch_generator.ts four words at a time, and PyTorch's float32 Box-Muller
;; (normal_fill_16_AVX2 with log256_ps and sincos256_ps of avx_mathfun.h, as lib/core/_avx_mathfun.ts writes it) on
;; the eight pairs of a block at once, in two f32x4 vectors. Every float32 operation of the AVX2 code is one f32x4
;; operation here, rounded the same way.
;; WebAssembly has no deterministic fused multiply-add, so where GCC fused a product into the following sum, the
;; operands go to f64x2 (the product of two float32 values is exact in float64), the sum is rounded to float64 and then
;; to float32 (demote): the same rounding as one fused float32 operation on every operand randn meets (see
;; fmaFloat32 in lib/core/_avx_mathfun.ts, which test/core/avx_mathfun.test.ts checks on every 24-bit uniform). The
;; JavaScript path evaluates the same expressions, so both paths give the same bits, and PyTorch's.
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
;; | theta = 2 pi u_j+8| $theta           | float32(2 pi) u, in [0, 2 pi)                                         |
;; | j                 | $octant          | the even octant (trunc(theta 4/pi) + 1) & ~1                          |
;; | r                 | $r, $r2 = r^2    | theta - j pi/4, in [-pi/4, pi/4], in three float32 parts of pi/4      |
;; | rho               | $rho             | sqrt(-2 ln u1)                                                        |
;; | xA, xB            | f32x4 locals     | the value for j = 0..3 and for j = 4..7                               |
;; | xA_0, xA_1        | f64x2 locals     | lanes 0-1 and 2-3 of xA, as float64, for the fused steps              |
;;
;; Memory layout (bytes), exported as globals so the loader never hard-codes it:
;;   [0, 2496)        state, 624 x i32
;;   [2560, 5056)     uniforms, 624 x f32
;;   [5120, 5184)     one block of 16 uniforms that straddles a twist, 16 x f32
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
  (global $LOW_24_BITS v128 (v128.const i32x4 0xffffff 0xffffff 0xffffff 0xffffff))
  (global $TWO_POW_MINUS_24 v128 (v128.const f32x4 0x1p-24 0x1p-24 0x1p-24 0x1p-24))
  ;; integer and bit-field constants of avx_mathfun.h
  (global $NOT_ONE v128 (v128.const i32x4 -2 -2 -2 -2))
  (global $TWOS v128 (v128.const i32x4 2 2 2 2))
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
          (v128.and (i32x4.neg (v128.and (local.get $y) (local.get $ones))) (local.get $matrixA))))
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
          (v128.and (i32x4.neg (v128.and (local.get $y) (local.get $ones))) (local.get $matrixA))))
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
        (v128.xor (local.get $word) (v128.and (i32x4.shl (local.get $word) (i32.const 7)) (global.get $TEMPER_B))))
      (local.set $word
        (v128.xor (local.get $word) (v128.and (i32x4.shl (local.get $word) (i32.const 15)) (global.get $TEMPER_C))))
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

  ;; Box-Muller on $blocks blocks of 16 uniforms from byte address $from, written as float32 from byte address $to, as
  ;; normal_fill_16_AVX2 computes it: in each block, for j < 8, u1 = 1 - u[j], rho = sqrt(-2 ln u1),
  ;; theta = float32(2 pi) u[j + 8], out[j] = rho cos theta, out[j + 8] = rho sin theta. Lanes j = 0..3 (locals ...A)
  ;; and j = 4..7 (...B) are computed side by side, statement by statement, so that their dependency chains overlap.
  (func $boxMuller (param $from i32) (param $to i32) (param $blocks i32)
    (local $aA_0 v128) (local $aA_1 v128) (local $aB_0 v128) (local $aB_1 v128) (local $bA_0 v128) (local $bA_1 v128)
    (local $bB_0 v128) (local $bB_1 v128) (local $belowA v128) (local $belowB v128) (local $cA_0 v128)
    (local $cA_1 v128) (local $cB_0 v128) (local $cB_1 v128) (local $cosA v128) (local $cosB v128) (local $eA v128)
    (local $eB v128) (local $mA v128) (local $mB v128) (local $octantA v128) (local $octantB v128)
    (local $octantFA v128) (local $octantFB v128) (local $polyMaskA v128) (local $polyMaskB v128) (local $qA v128)
    (local $qB v128) (local $r2A v128) (local $r2B v128) (local $rA v128) (local $rB v128) (local $rhoA v128)
    (local $rhoB v128) (local $sA_0 v128) (local $sA_1 v128) (local $sB_0 v128) (local $sB_1 v128) (local $sinA v128)
    (local $sinB v128) (local $sinPart1A v128) (local $sinPart1B v128) (local $sinPart2A v128)
    (local $sinPart2B v128) (local $t2A v128) (local $t2B v128) (local $tA v128) (local $tA_0 v128)
    (local $tA_1 v128) (local $tB v128) (local $tB_0 v128) (local $tB_1 v128) (local $thetaA v128)
    (local $thetaB v128) (local $u1A v128) (local $u1B v128) (local $yA v128) (local $yA_0 v128) (local $yA_1 v128)
    (local $yB v128) (local $yB_0 v128) (local $yB_1 v128)
    (loop $block
      ;; 1. u1 = 1 - u and its exponent and mantissa, e = (bits >> 23) - 126 (exact); where the mantissa m under
      ;;    1/2's exponent is below sqrt(1/2), e - 1 and t = 2 m - 1, else t = m - 1 (log256_ps)
      (local.set $u1A (f32x4.sub (global.get $ONE) (v128.load offset=0 (local.get $from))))
      (local.set $u1B (f32x4.sub (global.get $ONE) (v128.load offset=16 (local.get $from))))
      (local.set $eA
        (f32x4.convert_i32x4_s
          (i32x4.sub (i32x4.shr_u (local.get $u1A) (i32.const 23)) (global.get $EXPONENT_BIAS_MINUS_ONE))))
      (local.set $eB
        (f32x4.convert_i32x4_s
          (i32x4.sub (i32x4.shr_u (local.get $u1B) (i32.const 23)) (global.get $EXPONENT_BIAS_MINUS_ONE))))
      (local.set $mA (v128.or (v128.and (local.get $u1A) (global.get $NOT_EXPONENT)) (global.get $HALF_BITS)))
      (local.set $mB (v128.or (v128.and (local.get $u1B) (global.get $NOT_EXPONENT)) (global.get $HALF_BITS)))
      (local.set $belowA (f32x4.lt (local.get $mA) (global.get $SQRT_HALF)))
      (local.set $belowB (f32x4.lt (local.get $mB) (global.get $SQRT_HALF)))
      (local.set $eA (f32x4.sub (local.get $eA) (v128.and (global.get $ONE) (local.get $belowA))))
      (local.set $eB (f32x4.sub (local.get $eB) (v128.and (global.get $ONE) (local.get $belowB))))
      (local.set $tA
        (f32x4.add (f32x4.sub (local.get $mA) (global.get $ONE)) (v128.and (local.get $mA) (local.get $belowA))))
      (local.set $tB
        (f32x4.add (f32x4.sub (local.get $mB) (global.get $ONE)) (v128.and (local.get $mB) (local.get $belowB))))
      (local.set $t2A (f32x4.mul (local.get $tA) (local.get $tA)))
      (local.set $t2B (f32x4.mul (local.get $tB) (local.get $tB)))
      ;; 2. P(t) by Horner's rule, each step a fused multiply-add in float64 halves rounded to float32
      (local.set $tA_0 (f64x2.promote_low_f32x4 (local.get $tA)))
      (local.set $tB_0 (f64x2.promote_low_f32x4 (local.get $tB)))
      (local.set $tA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $tA) (local.get $tA))))
      (local.set $tB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $tB) (local.get $tB))))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $LOG_P0) (local.get $tA_0)) (global.get $LOG_P1)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $LOG_P0) (local.get $tB_0)) (global.get $LOG_P1)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $LOG_P0) (local.get $tA_1)) (global.get $LOG_P1)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $LOG_P0) (local.get $tB_1)) (global.get $LOG_P1)))))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (global.get $LOG_P2)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (global.get $LOG_P2)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (global.get $LOG_P2)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (global.get $LOG_P2)))))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (global.get $LOG_P3)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (global.get $LOG_P3)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (global.get $LOG_P3)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (global.get $LOG_P3)))))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (global.get $LOG_P4)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (global.get $LOG_P4)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (global.get $LOG_P4)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (global.get $LOG_P4)))))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (global.get $LOG_P5)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (global.get $LOG_P5)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (global.get $LOG_P5)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (global.get $LOG_P5)))))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (global.get $LOG_P6)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (global.get $LOG_P6)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (global.get $LOG_P6)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (global.get $LOG_P6)))))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (global.get $LOG_P7)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (global.get $LOG_P7)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (global.get $LOG_P7)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (global.get $LOG_P7)))))
      (local.set $yA
        (f32x4.mul
          (local.get $tA)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (global.get $LOG_P8)))
            (f32x4.demote_f64x2_zero
              (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (global.get $LOG_P8))))))
      (local.set $yB
        (f32x4.mul
          (local.get $tB)
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (global.get $LOG_P8)))
            (f32x4.demote_f64x2_zero
              (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (global.get $LOG_P8))))))
      ;; 3. y t^2 + e q1 fused (e q1 rounded first), - t^2/2 (exact halving), ln u1 = (t + y) + e q2 (exact
      ;;    product), rho = sqrt(-2 ln u1)
      (local.set $qA (f32x4.mul (local.get $eA) (global.get $LOG_Q1)))
      (local.set $qB (f32x4.mul (local.get $eB) (global.get $LOG_Q1)))
      (local.set $aA_0 (f64x2.promote_low_f32x4 (local.get $qA)))
      (local.set $aB_0 (f64x2.promote_low_f32x4 (local.get $qB)))
      (local.set $aA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $qA) (local.get $qA))))
      (local.set $aB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $qB) (local.get $qB))))
      (local.set $bA_0 (f64x2.promote_low_f32x4 (local.get $t2A)))
      (local.set $bB_0 (f64x2.promote_low_f32x4 (local.get $t2B)))
      (local.set $bA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $t2A) (local.get $t2A))))
      (local.set $bB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $t2B) (local.get $t2B))))
      (local.set $yA_0 (f64x2.promote_low_f32x4 (local.get $yA)))
      (local.set $yB_0 (f64x2.promote_low_f32x4 (local.get $yB)))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $yA) (local.get $yA))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $yB) (local.get $yB))))
      (local.set $yA
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $bA_0)) (local.get $aA_0)))
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $bA_1)) (local.get $aA_1)))))
      (local.set $yB
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $bB_0)) (local.get $aB_0)))
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $bB_1)) (local.get $aB_1)))))
      (local.set $yA (f32x4.sub (local.get $yA) (f32x4.mul (local.get $t2A) (global.get $HALF))))
      (local.set $yB (f32x4.sub (local.get $yB) (f32x4.mul (local.get $t2B) (global.get $HALF))))
      (local.set $rhoA
        (f32x4.sqrt
          (f32x4.mul
            (global.get $MINUS_TWO)
            (f32x4.add (f32x4.add (local.get $tA) (local.get $yA)) (f32x4.mul (local.get $eA) (global.get $LOG_Q2))))))
      (local.set $rhoB
        (f32x4.sqrt
          (f32x4.mul
            (global.get $MINUS_TWO)
            (f32x4.add (f32x4.add (local.get $tB) (local.get $yB)) (f32x4.mul (local.get $eB) (global.get $LOG_Q2))))))
      ;; 4. theta = 2 pi u, its even octant j = (trunc(theta 4/pi) + 1) & ~1, r = ((theta - j DP1) - j DP2) - j
      ;;    DP3: the first two products are exact (fused or not, one rounding), the third fused
      (local.set $thetaA (f32x4.mul (global.get $TWO_PI) (v128.load offset=32 (local.get $from))))
      (local.set $thetaB (f32x4.mul (global.get $TWO_PI) (v128.load offset=48 (local.get $from))))
      (local.set $octantA
        (v128.and
          (i32x4.add
            (i32x4.trunc_sat_f32x4_s (f32x4.mul (local.get $thetaA) (global.get $FOUR_OVER_PI)))
            (global.get $ONES))
          (global.get $NOT_ONE)))
      (local.set $octantB
        (v128.and
          (i32x4.add
            (i32x4.trunc_sat_f32x4_s (f32x4.mul (local.get $thetaB) (global.get $FOUR_OVER_PI)))
            (global.get $ONES))
          (global.get $NOT_ONE)))
      (local.set $octantFA (f32x4.convert_i32x4_s (local.get $octantA)))
      (local.set $octantFB (f32x4.convert_i32x4_s (local.get $octantB)))
      (local.set $rA (f32x4.add (local.get $thetaA) (f32x4.mul (local.get $octantFA) (global.get $MINUS_DP1))))
      (local.set $rB (f32x4.add (local.get $thetaB) (f32x4.mul (local.get $octantFB) (global.get $MINUS_DP1))))
      (local.set $rA (f32x4.add (local.get $rA) (f32x4.mul (local.get $octantFA) (global.get $MINUS_DP2))))
      (local.set $rB (f32x4.add (local.get $rB) (f32x4.mul (local.get $octantFB) (global.get $MINUS_DP2))))
      (local.set $aA_0 (f64x2.promote_low_f32x4 (local.get $octantFA)))
      (local.set $aB_0 (f64x2.promote_low_f32x4 (local.get $octantFB)))
      (local.set $aA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $octantFA) (local.get $octantFA))))
      (local.set $aB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $octantFB) (local.get $octantFB))))
      (local.set $bA_0 (f64x2.promote_low_f32x4 (local.get $rA)))
      (local.set $bB_0 (f64x2.promote_low_f32x4 (local.get $rB)))
      (local.set $bA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $rA) (local.get $rA))))
      (local.set $bB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $rB) (local.get $rB))))
      (local.set $rA
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $aA_0) (global.get $MINUS_DP3)) (local.get $bA_0)))
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (local.get $aA_1) (global.get $MINUS_DP3)) (local.get $bA_1)))))
      (local.set $rB
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $aB_0) (global.get $MINUS_DP3)) (local.get $bB_0)))
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (local.get $aB_1) (global.get $MINUS_DP3)) (local.get $bB_1)))))
      (local.set $r2A (f32x4.mul (local.get $rA) (local.get $rA)))
      (local.set $r2B (f32x4.mul (local.get $rB) (local.get $rB)))
      ;; 5. cos r = ((c0 r^2 + c1) r^2 + c2) r^2 r^2 - r^2/2 + 1, sin r = ((s0 r^2 + s1) r^2 + s2) r^2 r + r:
      ;;    multiply-adds fused, the products y r^2 rounded, in float64 halves
      (local.set $aA_0 (f64x2.promote_low_f32x4 (local.get $r2A)))
      (local.set $aB_0 (f64x2.promote_low_f32x4 (local.get $r2B)))
      (local.set $aA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $r2A) (local.get $r2A))))
      (local.set $aB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $r2B) (local.get $r2B))))
      (local.set $bA_0 (f64x2.promote_low_f32x4 (local.get $rA)))
      (local.set $bB_0 (f64x2.promote_low_f32x4 (local.get $rB)))
      (local.set $bA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $rA) (local.get $rA))))
      (local.set $bB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $rB) (local.get $rB))))
      (local.set $cA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $COS_P0) (local.get $aA_0)) (global.get $COS_P1)))))
      (local.set $cB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $COS_P0) (local.get $aB_0)) (global.get $COS_P1)))))
      (local.set $sA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $SIN_P0) (local.get $aA_0)) (global.get $SIN_P1)))))
      (local.set $sB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $SIN_P0) (local.get $aB_0)) (global.get $SIN_P1)))))
      (local.set $cA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $COS_P0) (local.get $aA_1)) (global.get $COS_P1)))))
      (local.set $cB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $COS_P0) (local.get $aB_1)) (global.get $COS_P1)))))
      (local.set $sA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $SIN_P0) (local.get $aA_1)) (global.get $SIN_P1)))))
      (local.set $sB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add (f64x2.mul (global.get $SIN_P0) (local.get $aB_1)) (global.get $SIN_P1)))))
      (local.set $cA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cA_0) (local.get $aA_0)) (global.get $COS_P2)))))
      (local.set $cB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cB_0) (local.get $aB_0)) (global.get $COS_P2)))))
      (local.set $sA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_0) (local.get $aA_0)) (global.get $SIN_P2)))))
      (local.set $sB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_0) (local.get $aB_0)) (global.get $SIN_P2)))))
      (local.set $cA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cA_1) (local.get $aA_1)) (global.get $COS_P2)))))
      (local.set $cB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cB_1) (local.get $aB_1)) (global.get $COS_P2)))))
      (local.set $sA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_1) (local.get $aA_1)) (global.get $SIN_P2)))))
      (local.set $sB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_1) (local.get $aB_1)) (global.get $SIN_P2)))))
      (local.set $cA_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cA_0) (local.get $aA_0)))))
      (local.set $cB_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cB_0) (local.get $aB_0)))))
      (local.set $sA_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sA_0) (local.get $aA_0)))))
      (local.set $sB_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sB_0) (local.get $aB_0)))))
      (local.set $cA_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cA_1) (local.get $aA_1)))))
      (local.set $cB_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cB_1) (local.get $aB_1)))))
      (local.set $sA_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sA_1) (local.get $aA_1)))))
      (local.set $sB_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sB_1) (local.get $aB_1)))))
      (local.set $cosA
        (f32x4.add
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.sub
                (f64x2.mul (local.get $cA_0) (local.get $aA_0))
                (f64x2.mul (local.get $aA_0) (global.get $HALF_64))))
            (f32x4.demote_f64x2_zero
              (f64x2.sub
                (f64x2.mul (local.get $cA_1) (local.get $aA_1))
                (f64x2.mul (local.get $aA_1) (global.get $HALF_64)))))
          (global.get $ONE)))
      (local.set $cosB
        (f32x4.add
          (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (f32x4.demote_f64x2_zero
              (f64x2.sub
                (f64x2.mul (local.get $cB_0) (local.get $aB_0))
                (f64x2.mul (local.get $aB_0) (global.get $HALF_64))))
            (f32x4.demote_f64x2_zero
              (f64x2.sub
                (f64x2.mul (local.get $cB_1) (local.get $aB_1))
                (f64x2.mul (local.get $aB_1) (global.get $HALF_64)))))
          (global.get $ONE)))
      (local.set $sinA
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_0) (local.get $bA_0)) (local.get $bA_0)))
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_1) (local.get $bA_1)) (local.get $bA_1)))))
      (local.set $sinB
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_0) (local.get $bB_0)) (local.get $bB_0)))
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_1) (local.get $bB_1)) (local.get $bB_1)))))
      ;; 6. select as sincos256_ps does (where j & 2 the polynomials swap roles; the subtractions leave +0 in
      ;;    the unused parts), then the signs: sin negated where j & 4, cos where (j - 2) & 4 is clear
      (local.set $polyMaskA (i32x4.eq (v128.and (local.get $octantA) (global.get $TWOS)) (global.get $ZERO)))
      (local.set $polyMaskB (i32x4.eq (v128.and (local.get $octantB) (global.get $TWOS)) (global.get $ZERO)))
      (local.set $sinPart2A (v128.and (local.get $sinA) (local.get $polyMaskA)))
      (local.set $sinPart2B (v128.and (local.get $sinB) (local.get $polyMaskB)))
      (local.set $sinPart1A (v128.andnot (local.get $cosA) (local.get $polyMaskA)))
      (local.set $sinPart1B (v128.andnot (local.get $cosB) (local.get $polyMaskB)))
      (local.set $sinA (f32x4.sub (local.get $sinA) (local.get $sinPart2A)))
      (local.set $sinB (f32x4.sub (local.get $sinB) (local.get $sinPart2B)))
      (local.set $cosA (f32x4.sub (local.get $cosA) (local.get $sinPart1A)))
      (local.set $cosB (f32x4.sub (local.get $cosB) (local.get $sinPart1B)))
      (local.set $cosA
        (v128.xor
          (f32x4.add (local.get $cosA) (local.get $sinA))
          (i32x4.shl
            (v128.andnot (global.get $FOURS) (i32x4.sub (local.get $octantA) (global.get $TWOS)))
            (i32.const 29))))
      (local.set $cosB
        (v128.xor
          (f32x4.add (local.get $cosB) (local.get $sinB))
          (i32x4.shl
            (v128.andnot (global.get $FOURS) (i32x4.sub (local.get $octantB) (global.get $TWOS)))
            (i32.const 29))))
      (local.set $sinA
        (v128.xor
          (f32x4.add (local.get $sinPart1A) (local.get $sinPart2A))
          (i32x4.shl (v128.and (local.get $octantA) (global.get $FOURS)) (i32.const 29))))
      (local.set $sinB
        (v128.xor
          (f32x4.add (local.get $sinPart1B) (local.get $sinPart2B))
          (i32x4.shl (v128.and (local.get $octantB) (global.get $FOURS)) (i32.const 29))))
      ;; 7. out[j] = rho cos theta, out[j + 8] = rho sin theta, each stored as fmadd(n, std = 1, mean = 0): + 0
      ;;    turns -0 into +0 and changes nothing else
      (v128.store offset=0
        (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoA) (local.get $cosA)) (global.get $ZERO)))
      (v128.store offset=16
        (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoB) (local.get $cosB)) (global.get $ZERO)))
      (v128.store offset=32
        (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoA) (local.get $sinA)) (global.get $ZERO)))
      (v128.store offset=48
        (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoB) (local.get $sinB)) (global.get $ZERO)))
      (local.set $from (i32.add (local.get $from) (i32.const 64)))
      (local.set $to (i32.add (local.get $to) (i32.const 64)))
      (local.set $blocks (i32.sub (local.get $blocks) (i32.const 1)))
      (br_if $block (local.get $blocks))))

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
