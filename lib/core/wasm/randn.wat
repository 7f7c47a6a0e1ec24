;; PyTorch's CPU randn (float32, 16 elements or more) in WebAssembly SIMD: the mt19937 twist, tempering and
;; uniform conversion of lib/core/torch_generator.ts four words at a time, and its Box-Muller transform two elements at a
;; time in float64. Every float64 operation is the one the JavaScript path performs, in the same order (WebAssembly,
;; like JavaScript, rounds each operation to nearest and never fuses two), and every integer step is exact, so both
;; paths give the same bits.
;;
;; Build: `npm run build:wasm` (wabt's wat2wasm with SIMD enabled) writes the bytes, base64-encoded, to
;; lib/core/_randn_wasm_bytes.ts; test/core/randn_wasm.test.ts checks that they equal a fresh build of this file.
;;
;; | symbol           | here                  | meaning                                                        |
;; |------------------|-----------------------|----------------------------------------------------------------|
;; | mt[0..624)       | state (i32)           | the mt19937 words                                              |
;; | u_k              | uniforms (f64)        | (temper(mt[k]) & 0xFFFFFF) / 2^24, made at each twist          |
;; | 1 - u = n / 2^24 | $oneMinusU            | n an integer in [1, 2^24], e = floor(log2 n)                   |
;; | scaled           | $scaled               | n 2^(23 - e), in [2^23, 2^24): the JavaScript path's integer   |
;; | j                | table point           | the top 7 bits of scaled below its leading one                 |
;; | ln c 2^(e - 24)  | log table, first f64  | c = (128 + j) / 128, one pair per exponent e and point j       |
;; | 1 / (c 2^23)     | log table, second f64 | turns the low 16 bits of scaled into r = scaled / (c 2^23) - 1 |
;; | rho              | $rho                  | sqrt(-2 ln(1 - u_j))                                           |
;; | theta = 2 pi u   | q pi/2 + a            | q quarter turns (0..4) and a remainder a in [-pi/4, pi/4]      |
;;
;; Memory layout (bytes), exported as globals so the loader never hard-codes it:
;;   [0, 2496)        state, 624 x i32
;;   [2560, 7552)     uniforms, 624 x f64
;;   [7552, 7680)     one block of 16 uniforms that straddles a twist, 16 x f64
;;   [8192, 59392)    log table: for e = 0..24 and j = 0..127, the pair (ln((128 + j) 2^(e - 31)), 1 / ((128 + j) 2^16))
;;   [65536, 327680)  output, 65536 x f32
(module
  (memory (export "memory") 5 5)
  (global (export "stateOffset") i32 (i32.const 0))
  (global (export "uniformsOffset") i32 (i32.const 2560))
  (global (export "logTableOffset") i32 (i32.const 8192))
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
  (global $TWO_POW_MINUS_24 v128 (v128.const f64x2 0x1p-24 0x1p-24))
  ;; float64 bit fields, and the float64 constants of boxMuller16 (lib/core/torch_generator.ts), rounded to float64 as
  ;; JavaScript rounds them (1/3, 0.2 and the Taylor coefficients written as exact hexadecimal floats)
  (global $MANTISSA_BITS v128 (v128.const i64x2 0x000fffffffffffff 0x000fffffffffffff))
  (global $ABOVE_LOW_16_OF_24 v128 (v128.const i64x2 0xffffe00000000000 0xffffe00000000000))
  (global $SIGN_BIT v128 (v128.const i64x2 0x8000000000000000 0x8000000000000000))
  (global $ONES_64 v128 (v128.const i64x2 1 1))
  ;; byte address of pair e * 128 + j = 16 ((bits of 1 - u) >> 45) + this: the exponent field of 1 - u is
  ;; 1023 + e - 24, so this is 8192 - 16 * 999 * 128
  (global $LOG_PAIR_BASE v128 (v128.const i64x2 -2037760 -2037760))
  (global $ONE v128 (v128.const f64x2 1 1))
  (global $HALF v128 (v128.const f64x2 0.5 0.5))
  (global $QUARTER v128 (v128.const f64x2 0.25 0.25))
  (global $THIRD v128 (v128.const f64x2 0x1.5555555555555p-2 0x1.5555555555555p-2))
  (global $FIFTH v128 (v128.const f64x2 0x1.999999999999ap-3 0x1.999999999999ap-3))
  (global $SIX v128 (v128.const f64x2 6 6))
  (global $SEVEN v128 (v128.const f64x2 7 7))
  (global $MINUS_TWO v128 (v128.const f64x2 -2 -2))
  (global $FOUR v128 (v128.const f64x2 4 4))
  (global $TWO_POW_23 v128 (v128.const f64x2 0x1p23 0x1p23))
  (global $TWO_POW_52 v128 (v128.const f64x2 0x1p52 0x1p52))
  (global $HALF_PI v128 (v128.const f64x2 0x1.921fb54442d18p0 0x1.921fb54442d18p0))
  (global $SIN_3 v128 (v128.const f64x2 -0x1.5555555555555p-3 -0x1.5555555555555p-3))
  (global $SIN_5 v128 (v128.const f64x2 0x1.1111111111111p-7 0x1.1111111111111p-7))
  (global $SIN_7 v128 (v128.const f64x2 -0x1.a01a01a01a01ap-13 -0x1.a01a01a01a01ap-13))
  (global $SIN_9 v128 (v128.const f64x2 0x1.71de3a556c734p-19 0x1.71de3a556c734p-19))
  (global $SIN_11 v128 (v128.const f64x2 -0x1.ae64567f544e4p-26 -0x1.ae64567f544e4p-26))
  (global $COS_2 v128 (v128.const f64x2 -0.5 -0.5))
  (global $COS_4 v128 (v128.const f64x2 0x1.5555555555555p-5 0x1.5555555555555p-5))
  (global $COS_6 v128 (v128.const f64x2 -0x1.6c16c16c16c17p-10 -0x1.6c16c16c16c17p-10))
  (global $COS_8 v128 (v128.const f64x2 0x1.a01a01a01a01ap-16 0x1.a01a01a01a01ap-16))
  (global $COS_10 v128 (v128.const f64x2 -0x1.27e4fb7789f5cp-22 -0x1.27e4fb7789f5cp-22))
  (global $COS_12 v128 (v128.const f64x2 0x1.1eed8eff8d898p-29 0x1.1eed8eff8d898p-29))

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
    ;; 5. temper every word, and keep u = (word & 0xFFFFFF) / 2^24 (exact in float64)
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
      (v128.store offset=2560 (i32.shl (local.get $i) (i32.const 1))
        (f64x2.mul (f64x2.convert_low_i32x4_s (local.get $low24)) (global.get $TWO_POW_MINUS_24)))
      (v128.store offset=2576 (i32.shl (local.get $i) (i32.const 1))
        (f64x2.mul
          (f64x2.convert_low_i32x4_s
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $low24) (local.get $low24)))
          (global.get $TWO_POW_MINUS_24)))
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

  ;; Box-Muller on $blocks blocks of 16 uniforms from byte address $from, written as float32 from byte address $to:
  ;; in each block, for j < 8, rho = sqrt(-2 ln(1 - u[j])), theta = 2 pi u[j + 8], out[j] = rho cos theta,
  ;; out[j + 8] = rho sin theta, with the logarithm, cosine and sine evaluated as boxMuller16 in lib/core/torch_generator.ts
  ;; does. Each pass of the inner loop handles two values of j.
  (func $boxMuller (param $from i32) (param $to i32) (param $blocks i32)
    (local $j i32)
    (local $bits v128)
    (local $scaled v128)
    (local $pairAddress v128)
    (local $pair0 v128)
    (local $pair1 v128)
    (local $r v128)
    (local $r2 v128)
    (local $r4 v128)
    (local $rho v128)
    (local $quarterTurns v128)
    (local $quadrant v128)
    (local $a v128)
    (local $a2 v128)
    (local $a4 v128)
    (local $a8 v128)
    (local $sinA v128)
    (local $cosA v128)
    (local $sign v128)
    (local $odd v128)
    (local $cosQuadrant v128)
    (local $sinQuadrant v128)
    (loop $block
      (local.set $j (i32.const 0))
      (loop $pairs
        ;; 1. 1 - u = n / 2^24 exactly, n an integer in [1, 2^24]; its float64 bits hold e = floor(log2 n) (exponent
        ;;    field 1023 + e - 24) and the bits of n below its leading one, so scaled = n 2^(23 - e) is those bits
        ;;    under 2^23's exponent, and the table point j is their top 7 bits
        (local.set $bits (f64x2.sub (global.get $ONE) (v128.load (i32.add (local.get $from) (local.get $j)))))
        (local.set $scaled
          (v128.or (v128.and (local.get $bits) (global.get $MANTISSA_BITS)) (global.get $TWO_POW_23)))
        ;; 2. the table pair of e and j, one lane at a time
        (local.set $pairAddress
          (i64x2.add
            (i64x2.shl (i64x2.shr_u (local.get $bits) (i32.const 45)) (i32.const 4))
            (global.get $LOG_PAIR_BASE)))
        (local.set $pair0 (v128.load (i32x4.extract_lane 0 (local.get $pairAddress))))
        (local.set $pair1 (v128.load (i32x4.extract_lane 2 (local.get $pairAddress))))
        ;; 3. r = (scaled - (128 + j) 2^16) / ((128 + j) 2^16): clearing the low 16 bits of scaled leaves
        ;;    (128 + j) 2^16, and the difference is multiplied by the tabled reciprocal
        (local.set $r
          (f64x2.mul
            (f64x2.sub (local.get $scaled) (v128.and (local.get $scaled) (global.get $ABOVE_LOW_16_OF_24)))
            (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $pair0) (local.get $pair1))))
        ;; 4. rho = sqrt(-2 (ln(c 2^(e - 24)) + ln(1 + r))), ln(1 + r) to r^7:
        ;;    r ((1 - r / 2) + r^2 (1/3 - r / 4) + r^4 ((1/5 - r / 6) + r^2 / 7))
        (local.set $r2 (f64x2.mul (local.get $r) (local.get $r)))
        (local.set $r4 (f64x2.mul (local.get $r2) (local.get $r2)))
        (local.set $rho
          (f64x2.sqrt
            (f64x2.mul
              (global.get $MINUS_TWO)
              (f64x2.add
                (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $pair0) (local.get $pair1))
                (f64x2.mul
                  (local.get $r)
                  (f64x2.add
                    (f64x2.add
                      (f64x2.sub (global.get $ONE) (f64x2.mul (global.get $HALF) (local.get $r)))
                      (f64x2.mul
                        (local.get $r2)
                        (f64x2.sub (global.get $THIRD) (f64x2.mul (global.get $QUARTER) (local.get $r)))))
                    (f64x2.mul
                      (local.get $r4)
                      (f64x2.add
                        (f64x2.sub (global.get $FIFTH) (f64x2.div (local.get $r) (global.get $SIX)))
                        (f64x2.div (local.get $r2) (global.get $SEVEN))))))))))
        ;; 5. theta = 2 pi u = q pi/2 + a: q = floor(4 u + 1/2) in 0..4 (the JavaScript path truncates, the same for
        ;;    a positive number), a = (4 u - q) pi/2
        (local.set $quarterTurns
          (f64x2.mul (v128.load offset=64 (i32.add (local.get $from) (local.get $j))) (global.get $FOUR)))
        (local.set $quadrant (f64x2.floor (f64x2.add (local.get $quarterTurns) (global.get $HALF))))
        (local.set $a
          (f64x2.mul (f64x2.sub (local.get $quarterTurns) (local.get $quadrant)) (global.get $HALF_PI)))
        ;; 6. sin a and cos a from their Taylor series, grouped as in the JavaScript path:
        ;;    sin a = a (((1 - a^2/3!) + a^4 (1/5! - a^2/7!)) + a^8 (1/9! - a^2/11!))
        ;;    cos a = ((1 - a^2/2!) + a^4 (1/4! - a^2/6!)) + a^8 ((1/8! - a^2/10!) + a^4/12!)
        (local.set $a2 (f64x2.mul (local.get $a) (local.get $a)))
        (local.set $a4 (f64x2.mul (local.get $a2) (local.get $a2)))
        (local.set $a8 (f64x2.mul (local.get $a4) (local.get $a4)))
        (local.set $sinA
          (f64x2.mul
            (local.get $a)
            (f64x2.add
              (f64x2.add
                (f64x2.add (global.get $ONE) (f64x2.mul (global.get $SIN_3) (local.get $a2)))
                (f64x2.mul
                  (local.get $a4)
                  (f64x2.add (global.get $SIN_5) (f64x2.mul (global.get $SIN_7) (local.get $a2)))))
              (f64x2.mul
                (local.get $a8)
                (f64x2.add (global.get $SIN_9) (f64x2.mul (global.get $SIN_11) (local.get $a2)))))))
        (local.set $cosA
          (f64x2.add
            (f64x2.add
              (f64x2.add (global.get $ONE) (f64x2.mul (global.get $COS_2) (local.get $a2)))
              (f64x2.mul
                (local.get $a4)
                (f64x2.add (global.get $COS_4) (f64x2.mul (global.get $COS_6) (local.get $a2)))))
            (f64x2.mul
              (local.get $a8)
              (f64x2.add
                (f64x2.add (global.get $COS_8) (f64x2.mul (global.get $COS_10) (local.get $a2)))
                (f64x2.mul (local.get $a4) (global.get $COS_12))))))
        ;; 7. cos and sin of q quarter turns, the JavaScript path's tables [1, 0, -1, 0, 1] and [0, 1, 0, -1, 0]: the
        ;;    integer q sits in the low bits of q + 2^52; sign = +-1 takes bit 1 of q as its sign bit, and belongs to
        ;;    the sine when q is odd, to the cosine otherwise (the other gets +0, as in the tables)
        (local.set $quadrant (f64x2.add (local.get $quadrant) (global.get $TWO_POW_52)))
        (local.set $sign
          (v128.or
            (v128.and (i64x2.shl (local.get $quadrant) (i32.const 62)) (global.get $SIGN_BIT))
            (global.get $ONE)))
        (local.set $odd (i64x2.eq (v128.and (local.get $quadrant) (global.get $ONES_64)) (global.get $ONES_64)))
        (local.set $cosQuadrant (v128.andnot (local.get $sign) (local.get $odd)))
        (local.set $sinQuadrant (v128.and (local.get $sign) (local.get $odd)))
        ;; 8. rotate by the quarter turns, scale by rho, round to float32:
        ;;    out[j] = rho (cos q cos a - sin q sin a), out[j + 8] = rho (sin q cos a + cos q sin a)
        (v128.store64_lane 0
          (i32.add (local.get $to) (i32.shr_u (local.get $j) (i32.const 1)))
          (f32x4.demote_f64x2_zero
            (f64x2.mul
              (local.get $rho)
              (f64x2.sub
                (f64x2.mul (local.get $cosQuadrant) (local.get $cosA))
                (f64x2.mul (local.get $sinQuadrant) (local.get $sinA))))))
        (v128.store64_lane offset=32 0
          (i32.add (local.get $to) (i32.shr_u (local.get $j) (i32.const 1)))
          (f32x4.demote_f64x2_zero
            (f64x2.mul
              (local.get $rho)
              (f64x2.add
                (f64x2.mul (local.get $sinQuadrant) (local.get $cosA))
                (f64x2.mul (local.get $cosQuadrant) (local.get $sinA))))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br_if $pairs (i32.lt_u (local.get $j) (i32.const 64))))
      (local.set $from (i32.add (local.get $from) (i32.const 128)))
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
              (i32.add (i32.const 2560) (i32.shl (local.get $index) (i32.const 3))) (local.get $to) (local.get $run))
            (local.set $index (i32.add (local.get $index) (i32.shl (local.get $run) (i32.const 4)))))
          (else
            (local.set $run (i32.const 1))
            (local.set $k (i32.const 0))
            (loop $gather
              (if (i32.ge_u (local.get $index) (i32.const 624))
                (then
                  (call $twist)
                  (local.set $index (i32.const 0))))
              (f64.store offset=7552 (i32.shl (local.get $k) (i32.const 3))
                (f64.load offset=2560 (i32.shl (local.get $index) (i32.const 3))))
              (local.set $index (i32.add (local.get $index) (i32.const 1)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br_if $gather (i32.lt_u (local.get $k) (i32.const 16))))
            (call $boxMuller (i32.const 7552) (local.get $to) (i32.const 1))))
        (local.set $to (i32.add (local.get $to) (i32.shl (local.get $run) (i32.const 6))))
        (local.set $blocks (i32.sub (local.get $blocks) (local.get $run)))
        (br $runs)))
    (local.get $index)))
