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
;; Speed (bench/randn.ts measures it): a fused step costs a promote, a multiply, an add, a demote and a promote per
;; f64x2 half, about 12 cycles from operand to result, and the logarithm chains eight of them, so $boxMuller is written
;; for JavaScriptCore's code generator (Bun), whose habits decide most of its speed:
;; - the two float64 halves are joined with f64x2.replace_lane (one unpcklpd), not with a two-input i8x16.shuffle,
;;   which costs two pshufb, a por and two mask registers;
;; - constants are read from a table in memory into locals just before their uses, not with global.get: the engine
;;   hoists constant globals out of the loop and pins them in registers, and with 16 xmm registers it then spills the
;;   Horner and polynomial chains to the stack on every step;
;; - the Horner steps of the logarithm and the sine and cosine, independent chains, alternate statement by statement,
;;   so that the processor works on one while the other waits on its roundings;
;; - a vector shift by a constant costs four instructions (the count goes through a general register each time), so
;;   left shifts are products by a power of two, which give the same word;
;; - i32x4.trunc_sat_f32x4_s, which x86 lacks and the engine builds from seven instructions, is avoided.
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
;; | j                 | $octantF, $octant| the even octant (trunc(theta 4/pi) + 1) & ~1; $octant: 0x4B000000 + j |
;; | r                 | $r, $r2 = r^2    | theta - j pi/4, in [-pi/4, pi/4], in three float32 parts of pi/4      |
;; | rho               | $rho             | sqrt(-2 ln u1)                                                        |
;; | xA, xB            | f32x4 locals     | the value for j = 0..3 and for j = 4..7                               |
;; | xA_0, xA_1        | f64x2 locals     | lanes 0-1 and 2-3 of xA, as float64, for the fused steps              |
;;
;; Memory layout (bytes), exported as globals so the loader never hard-codes it:
;;   [0, 2496)        state, 624 x i32
;;   [2560, 5056)     uniforms, 624 x f32
;;   [5120, 5184)     one block of 16 uniforms that straddles a twist, 16 x f32
;;   [5184, 5744)     constant table of $boxMuller, 35 x v128, filled from the globals below by $storeConstants when the
;;                    module is instantiated (its order: the stores there)
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

  ;; Copy the constants that $boxMuller reads into the constant table (see "Memory layout" above); runs when the
  ;; module is instantiated.
  (func $storeConstants
    (v128.store offset=5184 (i32.const 0) (global.get $ONE))
    (v128.store offset=5200 (i32.const 0) (global.get $EXPONENT_BIAS_MINUS_ONE))
    (v128.store offset=5216 (i32.const 0) (global.get $NOT_EXPONENT))
    (v128.store offset=5232 (i32.const 0) (global.get $HALF_BITS))
    (v128.store offset=5248 (i32.const 0) (global.get $SQRT_HALF))
    (v128.store offset=5264 (i32.const 0) (global.get $LOG_P0))
    (v128.store offset=5280 (i32.const 0) (global.get $LOG_P1))
    (v128.store offset=5296 (i32.const 0) (global.get $LOG_P2))
    (v128.store offset=5312 (i32.const 0) (global.get $LOG_P3))
    (v128.store offset=5328 (i32.const 0) (global.get $TWO_PI))
    (v128.store offset=5344 (i32.const 0) (global.get $FOUR_OVER_PI))
    (v128.store offset=5360 (i32.const 0) (global.get $HALF))
    (v128.store offset=5376 (i32.const 0) (global.get $LOG_P4))
    (v128.store offset=5392 (i32.const 0) (global.get $TWO_POW_23))
    (v128.store offset=5408 (i32.const 0) (global.get $MINUS_DP1))
    (v128.store offset=5424 (i32.const 0) (global.get $LOG_P5))
    (v128.store offset=5440 (i32.const 0) (global.get $MINUS_DP2))
    (v128.store offset=5456 (i32.const 0) (global.get $MINUS_DP3))
    (v128.store offset=5472 (i32.const 0) (global.get $LOG_P6))
    (v128.store offset=5488 (i32.const 0) (global.get $COS_P0))
    (v128.store offset=5504 (i32.const 0) (global.get $COS_P1))
    (v128.store offset=5520 (i32.const 0) (global.get $LOG_P7))
    (v128.store offset=5536 (i32.const 0) (global.get $SIN_P0))
    (v128.store offset=5552 (i32.const 0) (global.get $SIN_P1))
    (v128.store offset=5568 (i32.const 0) (global.get $LOG_P8))
    (v128.store offset=5584 (i32.const 0) (global.get $COS_P2))
    (v128.store offset=5600 (i32.const 0) (global.get $SIN_P2))
    (v128.store offset=5616 (i32.const 0) (global.get $LOG_Q1))
    (v128.store offset=5632 (i32.const 0) (global.get $HALF_64))
    (v128.store offset=5648 (i32.const 0) (global.get $MINUS_TWO))
    (v128.store offset=5664 (i32.const 0) (global.get $LOG_Q2))
    (v128.store offset=5680 (i32.const 0) (global.get $TWOS))
    (v128.store offset=5696 (i32.const 0) (global.get $ZERO))
    (v128.store offset=5712 (i32.const 0) (global.get $FOURS))
    (v128.store offset=5728 (i32.const 0) (global.get $TWO_POW_29)))
  (start $storeConstants)

  ;; Box-Muller on $blocks blocks of 16 uniforms from byte address $from, written as float32 from byte address $to, as
  ;; normal_fill_16_AVX2 computes it: in each block, for j < 8, u1 = 1 - u[j], rho = sqrt(-2 ln u1),
  ;; theta = float32(2 pi) u[j + 8], out[j] = rho cos theta, out[j + 8] = rho sin theta. Lanes j = 0..3 (locals ...A)
  ;; and j = 4..7 (...B) are computed side by side, statement by statement, so that their dependency chains overlap; so
  ;; are the logarithm (steps 1-3) and the sine and cosine (steps 4-5) from the third Horner step on. A local named
  ;; like a constant (for example $LOG_P3) holds that constant, loaded from the constant table shortly before its uses.
  (func $boxMuller (param $from i32) (param $to i32) (param $blocks i32)
    (local $COS_P0 v128) (local $COS_P1 v128) (local $COS_P2 v128) (local $EXPONENT_BIAS_MINUS_ONE v128)
    (local $FOURS v128) (local $FOUR_OVER_PI v128) (local $HALF v128) (local $HALF_64 v128) (local $HALF_BITS v128)
    (local $LOG_P0 v128) (local $LOG_P1 v128) (local $LOG_P2 v128) (local $LOG_P3 v128) (local $LOG_P4 v128)
    (local $LOG_P5 v128) (local $LOG_P6 v128) (local $LOG_P7 v128) (local $LOG_P8 v128) (local $LOG_Q1 v128)
    (local $LOG_Q2 v128) (local $MINUS_DP1 v128) (local $MINUS_DP2 v128) (local $MINUS_DP3 v128) (local $MINUS_TWO v128)
    (local $NOT_EXPONENT v128) (local $ONE v128) (local $SIN_P0 v128) (local $SIN_P1 v128) (local $SIN_P2 v128)
    (local $SQRT_HALF v128) (local $TWOS v128) (local $TWO_PI v128) (local $TWO_POW_23 v128) (local $TWO_POW_29 v128)
    (local $ZERO v128) (local $belowA v128) (local $belowB v128) (local $cA_0 v128) (local $cA_1 v128)
    (local $cB_0 v128) (local $cB_1 v128) (local $cosA v128) (local $cosB v128) (local $eA v128) (local $eB v128)
    (local $mA v128) (local $mB v128) (local $octantA v128) (local $octantB v128) (local $octantFA v128)
    (local $octantFB v128) (local $polyMaskA v128) (local $polyMaskB v128) (local $qA v128) (local $qB v128)
    (local $r2A_0 v128) (local $r2A_1 v128) (local $r2B_0 v128) (local $r2B_1 v128) (local $rA v128) (local $rA_0 v128)
    (local $rA_1 v128) (local $rB v128) (local $rB_0 v128) (local $rB_1 v128) (local $rhoA v128) (local $rhoB v128)
    (local $sA_0 v128) (local $sA_1 v128) (local $sB_0 v128) (local $sB_1 v128) (local $sinA v128) (local $sinB v128)
    (local $sinPart1A v128) (local $sinPart1B v128) (local $sinPart2A v128) (local $sinPart2B v128) (local $t2A v128)
    (local $t2B v128) (local $tA v128) (local $tA_0 v128) (local $tA_1 v128) (local $tB v128) (local $tB_0 v128)
    (local $tB_1 v128) (local $thetaA v128) (local $thetaB v128) (local $u1A v128) (local $u1B v128) (local $yA v128)
    (local $yA_0 v128) (local $yA_1 v128) (local $yB v128) (local $yB_0 v128) (local $yB_1 v128)
    (loop $block
      ;; 1. u1 = 1 - u and its exponent and mantissa, e = (bits >> 23) - 126 (exact); where the mantissa m under 1/2's
      ;;    exponent is below sqrt(1/2), e - 1 and t = 2 m - 1, else t = m - 1 (log256_ps); t also in float64 halves
      (local.set $ONE (v128.load offset=5184 (i32.const 0)))
      (local.set $u1A (f32x4.sub (local.get $ONE) (v128.load offset=0 (local.get $from))))
      (local.set $u1B (f32x4.sub (local.get $ONE) (v128.load offset=16 (local.get $from))))
      (local.set $EXPONENT_BIAS_MINUS_ONE (v128.load offset=5200 (i32.const 0)))
      (local.set $eA
        (f32x4.convert_i32x4_s
          (i32x4.sub (i32x4.shr_u (local.get $u1A) (i32.const 23)) (local.get $EXPONENT_BIAS_MINUS_ONE))))
      (local.set $eB
        (f32x4.convert_i32x4_s
          (i32x4.sub (i32x4.shr_u (local.get $u1B) (i32.const 23)) (local.get $EXPONENT_BIAS_MINUS_ONE))))
      (local.set $NOT_EXPONENT (v128.load offset=5216 (i32.const 0)))
      (local.set $HALF_BITS (v128.load offset=5232 (i32.const 0)))
      (local.set $mA (v128.or (v128.and (local.get $u1A) (local.get $NOT_EXPONENT)) (local.get $HALF_BITS)))
      (local.set $mB (v128.or (v128.and (local.get $u1B) (local.get $NOT_EXPONENT)) (local.get $HALF_BITS)))
      (local.set $SQRT_HALF (v128.load offset=5248 (i32.const 0)))
      (local.set $belowA (f32x4.lt (local.get $mA) (local.get $SQRT_HALF)))
      (local.set $belowB (f32x4.lt (local.get $mB) (local.get $SQRT_HALF)))
      (local.set $eA (f32x4.sub (local.get $eA) (v128.and (local.get $ONE) (local.get $belowA))))
      (local.set $eB (f32x4.sub (local.get $eB) (v128.and (local.get $ONE) (local.get $belowB))))
      (local.set $tA
        (f32x4.add (f32x4.sub (local.get $mA) (local.get $ONE)) (v128.and (local.get $mA) (local.get $belowA))))
      (local.set $tB
        (f32x4.add (f32x4.sub (local.get $mB) (local.get $ONE)) (v128.and (local.get $mB) (local.get $belowB))))
      (local.set $tA_0 (f64x2.promote_low_f32x4 (local.get $tA)))
      (local.set $tA_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $tA) (local.get $tA))))
      (local.set $tB_0 (f64x2.promote_low_f32x4 (local.get $tB)))
      (local.set $tB_1
        (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $tB) (local.get $tB))))
      ;; 2. P(t) by Horner's rule, y = p0 t + p1, then y = y t + p_k for k = 2..8: each step a fused multiply-add in
      ;;    float64 halves, rounded to float32 (demote) and back to float64 (promote) for the next step
      (local.set $LOG_P0 (v128.load offset=5264 (i32.const 0)))
      (local.set $LOG_P1 (v128.load offset=5280 (i32.const 0)))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $LOG_P0) (local.get $tA_0)) (local.get $LOG_P1)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $LOG_P0) (local.get $tA_1)) (local.get $LOG_P1)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $LOG_P0) (local.get $tB_0)) (local.get $LOG_P1)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $LOG_P0) (local.get $tB_1)) (local.get $LOG_P1)))))
      ;; 2. Horner step k = 2
      (local.set $LOG_P2 (v128.load offset=5296 (i32.const 0)))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (local.get $LOG_P2)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (local.get $LOG_P2)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (local.get $LOG_P2)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (local.get $LOG_P2)))))
      ;; 2. Horner step k = 3. From here on the rest of the logarithm (steps 2 and 3) and the sine and cosine of theta
      ;;    (steps 4 and 5), two independent dependency chains, alternate statement by statement, so that the processor
      ;;    works on both at once instead of waiting on each rounding of the Horner steps
      (local.set $LOG_P3 (v128.load offset=5312 (i32.const 0)))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (local.get $LOG_P3)))))
      ;; 4. theta = float32(2 pi) u
      (local.set $TWO_PI (v128.load offset=5328 (i32.const 0)))
      (local.set $thetaA (f32x4.mul (local.get $TWO_PI) (v128.load offset=32 (local.get $from))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (local.get $LOG_P3)))))
      (local.set $thetaB (f32x4.mul (local.get $TWO_PI) (v128.load offset=48 (local.get $from))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (local.get $LOG_P3)))))
      ;; 4. the even octant j = (trunc(x) + 1) & ~1 of x = theta 4/pi, in float32 as 2 floor((trunc(x) + 1) / 2), every
      ;;    step exact (i32x4.trunc_sat_f32x4_s would take seven x86 instructions)
      (local.set $FOUR_OVER_PI (v128.load offset=5344 (i32.const 0)))
      (local.set $ONE (v128.load offset=5184 (i32.const 0)))
      (local.set $HALF (v128.load offset=5360 (i32.const 0)))
      (local.set $octantFA
        (f32x4.floor
          (f32x4.mul
            (f32x4.add (f32x4.trunc (f32x4.mul (local.get $thetaA) (local.get $FOUR_OVER_PI))) (local.get $ONE))
            (local.get $HALF))))
      (local.set $octantFB
        (f32x4.floor
          (f32x4.mul
            (f32x4.add (f32x4.trunc (f32x4.mul (local.get $thetaB) (local.get $FOUR_OVER_PI))) (local.get $ONE))
            (local.get $HALF))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (local.get $LOG_P3)))))
      (local.set $octantFA (f32x4.add (local.get $octantFA) (local.get $octantFA)))
      ;; 2. Horner step k = 4
      (local.set $LOG_P4 (v128.load offset=5376 (i32.const 0)))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (local.get $LOG_P4)))))
      (local.set $octantFB (f32x4.add (local.get $octantFB) (local.get $octantFB)))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (local.get $LOG_P4)))))
      ;; 4. j's bits for step 6: j + 2^23 in float32 is the word 0x4B000000 + j, whose low 24 bits are j's, so (j & 2),
      ;;    (j & 4) and ((j - 2) & 4) read the same from it (j - 2 = -2 included)
      (local.set $TWO_POW_23 (v128.load offset=5392 (i32.const 0)))
      (local.set $octantA (f32x4.add (local.get $octantFA) (local.get $TWO_POW_23)))
      (local.set $octantB (f32x4.add (local.get $octantFB) (local.get $TWO_POW_23)))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (local.get $LOG_P4)))))
      ;; 4. r = theta - j DP1 (exact product, one rounding)
      (local.set $MINUS_DP1 (v128.load offset=5408 (i32.const 0)))
      (local.set $rA (f32x4.add (local.get $thetaA) (f32x4.mul (local.get $octantFA) (local.get $MINUS_DP1))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (local.get $LOG_P4)))))
      (local.set $rB (f32x4.add (local.get $thetaB) (f32x4.mul (local.get $octantFB) (local.get $MINUS_DP1))))
      ;; 2. Horner step k = 5
      (local.set $LOG_P5 (v128.load offset=5424 (i32.const 0)))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (local.get $LOG_P5)))))
      ;; 4. r = r - j DP2 (exact product, one rounding)
      (local.set $MINUS_DP2 (v128.load offset=5440 (i32.const 0)))
      (local.set $rA (f32x4.add (local.get $rA) (f32x4.mul (local.get $octantFA) (local.get $MINUS_DP2))))
      (local.set $rB (f32x4.add (local.get $rB) (f32x4.mul (local.get $octantFB) (local.get $MINUS_DP2))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (local.get $LOG_P5)))))
      ;; 4. r = r - j DP3 fused, in float64 halves (r stays in float64 for step 5)
      (local.set $MINUS_DP3 (v128.load offset=5456 (i32.const 0)))
      (local.set $rA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (local.get $octantFA)) (local.get $MINUS_DP3))
              (f64x2.promote_low_f32x4 (local.get $rA))))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (local.get $LOG_P5)))))
      (local.set $rA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15
                    (local.get $octantFA)
                    (local.get $octantFA)))
                (local.get $MINUS_DP3))
              (f64x2.promote_low_f32x4
                (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $rA) (local.get $rA)))))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (local.get $LOG_P5)))))
      (local.set $rB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (local.get $octantFB)) (local.get $MINUS_DP3))
              (f64x2.promote_low_f32x4 (local.get $rB))))))
      (local.set $rB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15
                    (local.get $octantFB)
                    (local.get $octantFB)))
                (local.get $MINUS_DP3))
              (f64x2.promote_low_f32x4
                (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $rB) (local.get $rB)))))))
      ;; 2. Horner step k = 6
      (local.set $LOG_P6 (v128.load offset=5472 (i32.const 0)))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (local.get $LOG_P6)))))
      ;; 5. cos r = ((c0 r^2 + c1) r^2 + c2) r^2 r^2 - r^2/2 + 1 and sin r = ((s0 r^2 + s1) r^2 + s2) r^2 r + r from
      ;;    r^2 rounded: multiply-adds fused, the products y r^2 rounded, in float64 halves
      (local.set $r2A_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $rA_0) (local.get $rA_0)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (local.get $LOG_P6)))))
      (local.set $r2B_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $rB_0) (local.get $rB_0)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (local.get $LOG_P6)))))
      (local.set $r2A_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $rA_1) (local.get $rA_1)))))
      (local.set $r2B_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $rB_1) (local.get $rB_1)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (local.get $LOG_P6)))))
      ;; 5. c0 r^2 + c1 and s0 r^2 + s1
      (local.set $COS_P0 (v128.load offset=5488 (i32.const 0)))
      (local.set $COS_P1 (v128.load offset=5504 (i32.const 0)))
      (local.set $cA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $COS_P0) (local.get $r2A_0)) (local.get $COS_P1)))))
      ;; 2. Horner step k = 7
      (local.set $LOG_P7 (v128.load offset=5520 (i32.const 0)))
      (local.set $yA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (local.get $LOG_P7)))))
      (local.set $cB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $COS_P0) (local.get $r2B_0)) (local.get $COS_P1)))))
      (local.set $yA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (local.get $LOG_P7)))))
      (local.set $SIN_P0 (v128.load offset=5536 (i32.const 0)))
      (local.set $SIN_P1 (v128.load offset=5552 (i32.const 0)))
      (local.set $sA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $SIN_P0) (local.get $r2A_0)) (local.get $SIN_P1)))))
      (local.set $sB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $SIN_P0) (local.get $r2B_0)) (local.get $SIN_P1)))))
      (local.set $yB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (local.get $LOG_P7)))))
      (local.set $cA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $COS_P0) (local.get $r2A_1)) (local.get $COS_P1)))))
      (local.set $yB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (local.get $LOG_P7)))))
      (local.set $cB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $COS_P0) (local.get $r2B_1)) (local.get $COS_P1)))))
      ;; 2. Horner step k = 8, left in float64: step 3 rounds it when it joins the halves
      (local.set $LOG_P8 (v128.load offset=5568 (i32.const 0)))
      (local.set $yA_0 (f64x2.add (f64x2.mul (local.get $yA_0) (local.get $tA_0)) (local.get $LOG_P8)))
      (local.set $sA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $SIN_P0) (local.get $r2A_1)) (local.get $SIN_P1)))))
      (local.set $sB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $SIN_P0) (local.get $r2B_1)) (local.get $SIN_P1)))))
      (local.set $yA_1 (f64x2.add (f64x2.mul (local.get $yA_1) (local.get $tA_1)) (local.get $LOG_P8)))
      ;; 5. (...) r^2 + c2 and (...) r^2 + s2
      (local.set $COS_P2 (v128.load offset=5584 (i32.const 0)))
      (local.set $cA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cA_0) (local.get $r2A_0)) (local.get $COS_P2)))))
      (local.set $yB_0 (f64x2.add (f64x2.mul (local.get $yB_0) (local.get $tB_0)) (local.get $LOG_P8)))
      (local.set $cB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cB_0) (local.get $r2B_0)) (local.get $COS_P2)))))
      (local.set $yB_1 (f64x2.add (f64x2.mul (local.get $yB_1) (local.get $tB_1)) (local.get $LOG_P8)))
      (local.set $SIN_P2 (v128.load offset=5600 (i32.const 0)))
      (local.set $sA_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_0) (local.get $r2A_0)) (local.get $SIN_P2)))))
      (local.set $sB_0
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_0) (local.get $r2B_0)) (local.get $SIN_P2)))))
      ;; 3. y = float32(y t) on the joined halves
      (local.set $yA
        (f32x4.mul
          (local.get $tA)
          (f64x2.replace_lane 1
            (f32x4.demote_f64x2_zero (local.get $yA_0))
            (f64x2.extract_lane 0 (f32x4.demote_f64x2_zero (local.get $yA_1))))))
      (local.set $cA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cA_1) (local.get $r2A_1)) (local.get $COS_P2)))))
      (local.set $yB
        (f32x4.mul
          (local.get $tB)
          (f64x2.replace_lane 1
            (f32x4.demote_f64x2_zero (local.get $yB_0))
            (f64x2.extract_lane 0 (f32x4.demote_f64x2_zero (local.get $yB_1))))))
      (local.set $cB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $cB_1) (local.get $r2B_1)) (local.get $COS_P2)))))
      ;; 3. t^2, and e q1 rounded
      (local.set $t2A (f32x4.mul (local.get $tA) (local.get $tA)))
      (local.set $sA_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_1) (local.get $r2A_1)) (local.get $SIN_P2)))))
      (local.set $sB_1
        (f64x2.promote_low_f32x4
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_1) (local.get $r2B_1)) (local.get $SIN_P2)))))
      (local.set $t2B (f32x4.mul (local.get $tB) (local.get $tB)))
      ;; 5. the products y r^2, rounded
      (local.set $cA_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cA_0) (local.get $r2A_0)))))
      (local.set $LOG_Q1 (v128.load offset=5616 (i32.const 0)))
      (local.set $qA (f32x4.mul (local.get $eA) (local.get $LOG_Q1)))
      (local.set $cB_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cB_0) (local.get $r2B_0)))))
      (local.set $qB (f32x4.mul (local.get $eB) (local.get $LOG_Q1)))
      (local.set $sA_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sA_0) (local.get $r2A_0)))))
      (local.set $sB_0
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sB_0) (local.get $r2B_0)))))
      ;; 3. y t^2 + e q1 fused, in float64 halves
      (local.set $yA
        (f64x2.replace_lane 1
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (local.get $yA)) (f64x2.promote_low_f32x4 (local.get $t2A)))
              (f64x2.promote_low_f32x4 (local.get $qA))))
          (f64x2.extract_lane 0
            (f32x4.demote_f64x2_zero
              (f64x2.add
                (f64x2.mul
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $yA) (local.get $yA)))
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $t2A) (local.get $t2A))))
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $qA) (local.get $qA))))))))
      (local.set $cA_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cA_1) (local.get $r2A_1)))))
      (local.set $yB
        (f64x2.replace_lane 1
          (f32x4.demote_f64x2_zero
            (f64x2.add
              (f64x2.mul (f64x2.promote_low_f32x4 (local.get $yB)) (f64x2.promote_low_f32x4 (local.get $t2B)))
              (f64x2.promote_low_f32x4 (local.get $qB))))
          (f64x2.extract_lane 0
            (f32x4.demote_f64x2_zero
              (f64x2.add
                (f64x2.mul
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $yB) (local.get $yB)))
                  (f64x2.promote_low_f32x4
                    (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $t2B) (local.get $t2B))))
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $qB) (local.get $qB))))))))
      (local.set $cB_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $cB_1) (local.get $r2B_1)))))
      ;; 3. - t^2/2 (exact halving)
      (local.set $HALF (v128.load offset=5360 (i32.const 0)))
      (local.set $yA (f32x4.sub (local.get $yA) (f32x4.mul (local.get $t2A) (local.get $HALF))))
      (local.set $sA_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sA_1) (local.get $r2A_1)))))
      (local.set $sB_1
        (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero (f64x2.mul (local.get $sB_1) (local.get $r2B_1)))))
      (local.set $yB (f32x4.sub (local.get $yB) (f32x4.mul (local.get $t2B) (local.get $HALF))))
      ;; 5. cos r = (y r^2 - r^2/2, fused) + 1
      (local.set $HALF_64 (v128.load offset=5632 (i32.const 0)))
      (local.set $ONE (v128.load offset=5184 (i32.const 0)))
      (local.set $cosA
        (f32x4.add
          (f64x2.replace_lane 1
            (f32x4.demote_f64x2_zero
              (f64x2.sub
                (f64x2.mul (local.get $cA_0) (local.get $r2A_0))
                (f64x2.mul (local.get $r2A_0) (local.get $HALF_64))))
            (f64x2.extract_lane 0
              (f32x4.demote_f64x2_zero
                (f64x2.sub
                  (f64x2.mul (local.get $cA_1) (local.get $r2A_1))
                  (f64x2.mul (local.get $r2A_1) (local.get $HALF_64))))))
          (local.get $ONE)))
      ;; 3. ln u1 = (t + y) + e q2 (exact product), rho = sqrt(-2 ln u1)
      (local.set $MINUS_TWO (v128.load offset=5648 (i32.const 0)))
      (local.set $LOG_Q2 (v128.load offset=5664 (i32.const 0)))
      (local.set $rhoA
        (f32x4.sqrt
          (f32x4.mul
            (local.get $MINUS_TWO)
            (f32x4.add (f32x4.add (local.get $tA) (local.get $yA)) (f32x4.mul (local.get $eA) (local.get $LOG_Q2))))))
      (local.set $cosB
        (f32x4.add
          (f64x2.replace_lane 1
            (f32x4.demote_f64x2_zero
              (f64x2.sub
                (f64x2.mul (local.get $cB_0) (local.get $r2B_0))
                (f64x2.mul (local.get $r2B_0) (local.get $HALF_64))))
            (f64x2.extract_lane 0
              (f32x4.demote_f64x2_zero
                (f64x2.sub
                  (f64x2.mul (local.get $cB_1) (local.get $r2B_1))
                  (f64x2.mul (local.get $r2B_1) (local.get $HALF_64))))))
          (local.get $ONE)))
      (local.set $rhoB
        (f32x4.sqrt
          (f32x4.mul
            (local.get $MINUS_TWO)
            (f32x4.add (f32x4.add (local.get $tB) (local.get $yB)) (f32x4.mul (local.get $eB) (local.get $LOG_Q2))))))
      ;; 5. sin r = y r + r, fused
      (local.set $sinA
        (f64x2.replace_lane 1
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_0) (local.get $rA_0)) (local.get $rA_0)))
          (f64x2.extract_lane 0
            (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sA_1) (local.get $rA_1)) (local.get $rA_1))))))
      (local.set $sinB
        (f64x2.replace_lane 1
          (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_0) (local.get $rB_0)) (local.get $rB_0)))
          (f64x2.extract_lane 0
            (f32x4.demote_f64x2_zero (f64x2.add (f64x2.mul (local.get $sB_1) (local.get $rB_1)) (local.get $rB_1))))))
      ;; 6. select as sincos256_ps does (where j & 2 the polynomials swap roles; the subtractions leave +0 in the unused
      ;;    parts), then the signs: sin negated where j & 4, cos where (j - 2) & 4 is clear, the bit moved to the sign
      ;;    by a product with 2^29 (a shift by 29, as in $twist)
      (local.set $TWOS (v128.load offset=5680 (i32.const 0)))
      (local.set $ZERO (v128.load offset=5696 (i32.const 0)))
      (local.set $polyMaskA (i32x4.eq (v128.and (local.get $octantA) (local.get $TWOS)) (local.get $ZERO)))
      (local.set $polyMaskB (i32x4.eq (v128.and (local.get $octantB) (local.get $TWOS)) (local.get $ZERO)))
      (local.set $sinPart2A (v128.and (local.get $sinA) (local.get $polyMaskA)))
      (local.set $sinPart2B (v128.and (local.get $sinB) (local.get $polyMaskB)))
      (local.set $sinPart1A (v128.andnot (local.get $cosA) (local.get $polyMaskA)))
      (local.set $sinPart1B (v128.andnot (local.get $cosB) (local.get $polyMaskB)))
      (local.set $sinA (f32x4.sub (local.get $sinA) (local.get $sinPart2A)))
      (local.set $sinB (f32x4.sub (local.get $sinB) (local.get $sinPart2B)))
      (local.set $cosA (f32x4.sub (local.get $cosA) (local.get $sinPart1A)))
      (local.set $cosB (f32x4.sub (local.get $cosB) (local.get $sinPart1B)))
      (local.set $FOURS (v128.load offset=5712 (i32.const 0)))
      (local.set $TWO_POW_29 (v128.load offset=5728 (i32.const 0)))
      (local.set $cosA
        (v128.xor
          (f32x4.add (local.get $cosA) (local.get $sinA))
          (i32x4.mul
            (v128.andnot (local.get $FOURS) (i32x4.sub (local.get $octantA) (local.get $TWOS)))
            (local.get $TWO_POW_29))))
      (local.set $cosB
        (v128.xor
          (f32x4.add (local.get $cosB) (local.get $sinB))
          (i32x4.mul
            (v128.andnot (local.get $FOURS) (i32x4.sub (local.get $octantB) (local.get $TWOS)))
            (local.get $TWO_POW_29))))
      (local.set $sinA
        (v128.xor
          (f32x4.add (local.get $sinPart1A) (local.get $sinPart2A))
          (i32x4.mul (v128.and (local.get $octantA) (local.get $FOURS)) (local.get $TWO_POW_29))))
      (local.set $sinB
        (v128.xor
          (f32x4.add (local.get $sinPart1B) (local.get $sinPart2B))
          (i32x4.mul (v128.and (local.get $octantB) (local.get $FOURS)) (local.get $TWO_POW_29))))
      ;; 7. out[j] = rho cos theta, out[j + 8] = rho sin theta, each stored as fmadd(n, std = 1, mean = 0): + 0 turns -0
      ;;    into +0 and changes nothing else
      (local.set $ZERO (v128.load offset=5696 (i32.const 0)))
      (v128.store offset=0 (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoA) (local.get $cosA)) (local.get $ZERO)))
      (v128.store offset=16 (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoB) (local.get $cosB)) (local.get $ZERO)))
      (v128.store offset=32 (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoA) (local.get $sinA)) (local.get $ZERO)))
      (v128.store offset=48 (local.get $to)
        (f32x4.add (f32x4.mul (local.get $rhoB) (local.get $sinB)) (local.get $ZERO)))
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
