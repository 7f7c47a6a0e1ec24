;; The fused first-order scheduler step of lib/schedulers/_kernels.ts in WebAssembly SIMD, four float32 lanes at a time.
;;
;; Built into lib/schedulers/_kernels_wasm.ts (the bytes, base64) by `bun tools/build_kernels_wasm.ts`; a test checks that the
;; committed bytes are this file's build.
;;
;; Per element, in float32 with every operation rounded (as PyTorch computes a float32 step), the same operations in
;; the same order as the scalar kernel `fusedStepScalar`, so the two give the same bits:
;;   predX0 = x0FromSample x + x0FromOutput m, clamped to [-clipRange, clipRange] (NaN stays NaN)
;;   prev   = ((x0Coeff predX0 + sampleCoeff x) + outputCoeff m) + noiseCoeff z      (the z term only with noise)
;;   check += (m - m) + (prev - prev)                                                (NaN when not finite)
;; The arrays are float32 and 16-byte aligned, n is a multiple of 4; pointers are byte offsets into the memory. predX0 is
;; written over m and x_{t-1} over x: each group of four is loaded before its results are stored, so the step needs no
;; further memory.
(module
  (memory (export "memory") 1)

  (func (export "fused")
    (param $m i32) (param $x i32) (param $z i32) (param $n i32)
    (param $a f32) (param $b f32) (param $lo f32) (param $hi f32)
    (param $c f32) (param $d f32) (param $e f32) (param $f f32) (param $noise i32)
    (result f32)
    (local $i i32) (local $end i32)
    (local $va v128) (local $vb v128) (local $vlo v128) (local $vhi v128)
    (local $vc v128) (local $vd v128) (local $ve v128) (local $vf v128)
    (local $xv v128) (local $mv v128) (local $x0 v128) (local $out v128) (local $check v128)
    (local.set $va (f32x4.splat (local.get $a)))
    (local.set $vb (f32x4.splat (local.get $b)))
    (local.set $vlo (f32x4.splat (local.get $lo)))
    (local.set $vhi (f32x4.splat (local.get $hi)))
    (local.set $vc (f32x4.splat (local.get $c)))
    (local.set $vd (f32x4.splat (local.get $d)))
    (local.set $ve (f32x4.splat (local.get $e)))
    (local.set $vf (f32x4.splat (local.get $f)))
    (local.set $check (f32x4.splat (f32.const 0)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
        (local.set $mv (v128.load (i32.add (local.get $m) (local.get $i))))
        ;; predX0, clamped: pmax(u, lo) = u < lo ? lo : u and pmin(v, hi) = hi < v ? hi : v keep a NaN (and -0) as
        ;; the scalar kernel's clamp does, and are one instruction each (min and max are not, on x86)
        (local.set $x0
          (f32x4.pmin
            (f32x4.pmax
              (f32x4.add (f32x4.mul (local.get $va) (local.get $xv)) (f32x4.mul (local.get $vb) (local.get $mv)))
              (local.get $vlo))
            (local.get $vhi)))
        ;; x_{t-1}
        (local.set $out
          (f32x4.add
            (f32x4.add (f32x4.mul (local.get $vc) (local.get $x0)) (f32x4.mul (local.get $vd) (local.get $xv)))
            (f32x4.mul (local.get $ve) (local.get $mv))))
        (if (local.get $noise)
          (then
            (local.set $out
              (f32x4.add (local.get $out)
                (f32x4.mul (local.get $vf) (v128.load (i32.add (local.get $z) (local.get $i))))))))
        (local.set $check
          (f32x4.add (local.get $check)
            (f32x4.add (f32x4.sub (local.get $mv) (local.get $mv)) (f32x4.sub (local.get $out) (local.get $out)))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $x0))
        (v128.store (i32.add (local.get $x) (local.get $i)) (local.get $out))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next)))
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $check)) (f32x4.extract_lane 1 (local.get $check)))
      (f32.add (f32x4.extract_lane 2 (local.get $check)) (f32x4.extract_lane 3 (local.get $check)))))
)
