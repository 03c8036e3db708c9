#!/usr/bin/env python3
"""The performance model of cuda/dev/NOTES-membound.md: predicted time of the v3/v4 memory-bound kernels
(rslora_mb_*) per shape and rank, from DRAM bytes, tensor work, Philox issue and shared-memory fragment
traffic. Assumptions are the constants below; nothing here is measured. Usage: python3 membound_model.py"""
BW = 4.3e12 * 0.85  # achievable streaming bandwidth assumed: 85 % of the 4.3 TB/s copy
MMA=400e12       # assumed mma.sync (wmma) bf16 rate in a streaming kernel: ~half the 790 TFLOP/s dense peak
ISSUE=132*4*1.98e9*32  # lane-instructions/s (1 warp-instr/clk per SM sub-partition)
SMEM=132*128*1.98e9    # shared-memory bytes/s
def rc_down(r): return 16 if r<=16 else 64 if r<=64 else 128 if r<=128 else 256
def rc_vdb(r): return 16 if r<=16 else 64
def rc_da(r): return 16 if r<=16 else 64 if r<=64 else 128
def cdiv(a,b): return -(-a//b)
def groups(n, want): return min(max(want,1), cdiv(n,64))
def model(N, di, do, r, drop=True):
    rp=cdiv(r,8)*8; out={}
    # down
    RC=rc_down(r); R=cdiv(r,RC); cov=R*RC
    byts=N*di*2 + N*r*4 + N*rp*2
    mma=2*N*di*cov/MMA
    philox=(N*di*R*14/ISSUE) if drop else 0
    WN=2 if RC>=32 else 1; FN=RC//16//WN
    smem=(N/64)*(di/64)*R*4*(4*WN)*(1+FN)*512/SMEM
    out['down']=(byts, max(byts/BW, mma, philox, smem), dict(mem=byts/BW, mma=mma, philox=philox, smem=smem))
    # vdb + vdb_reduce
    RC=rc_vdb(r); R=cdiv(r,RC); cols=1024 if RC==16 else 256; C=cdiv(do,cols)
    G=groups(N, cdiv(128, C*R)); rpg=cdiv(cdiv(N,64),G)*64; G=cdiv(N,rpg)
    vpart=C*N*r*4; dbpart=G*do*r*4
    byts_k=N*do*2 + vpart + dbpart
    mma=4*N*do*R*RC/MMA
    WN=2 if RC>=32 else 1; FN=RC//16//WN
    # smem per dY tile: V (A + FN B frags) + dB (acc load/store 2*1KB + 4*(A+B)) per warp per f
    per_tile = 4*WN*(4*(1+FN)*512 + FN*(2*1024 + 4*2*512))
    smem=(N/64)*(do/64)*R*per_tile/SMEM
    t_k=max(byts_k/BW, mma, smem)
    byts_r=vpart+dbpart+N*r*4+N*rp*2+do*r*4
    t_r=byts_r/BW
    out['vdb']=(byts_k+byts_r, t_k+t_r, dict(mem=byts_k/BW, mma=mma, smem=smem, reduce=t_r, C=C, G=G, vpart_MB=vpart/1e6, dbpart_MB=dbpart/1e6))
    # da + reduce
    RC=rc_da(r); R=cdiv(r,RC); cov=R*RC; T=cdiv(di,64)
    G=groups(N, cdiv(128, T*R)); rpg=cdiv(cdiv(N,64),G)*64; G=cdiv(N,rpg)
    part=G*r*di*4
    byts=N*di*2*R + part  # X once per rank chunk (DRAM if not in L2: counted)
    mma=2*N*di*cov/MMA
    philox=(N*di*R*14/ISSUE) if drop else 0
    FM=RC//16; FW=max(FM//2,1); warps=8 if FM>=2 else 4
    smem=(N/64)*(di/64)*R*warps*4*(512+FW*512)/SMEM
    t=max(byts/BW, mma, philox, smem) + (part+r*di*4)/BW
    out['da']=(byts, t, dict(mem=byts/BW, mma=mma, philox=philox, smem=smem, G=G, part_MB=part/1e6))
    return out
for (N,di,do) in [(8192,4096,4096),(8192,4096,11008),(8192,11008,4096)]:
    print(f"N={N} d_in={di} d_out={do}")
    for r in (16,64,256):
        m=model(N,di,do,r)
        for k,(b,t,d) in m.items():
            print(f"  r={r:3d} {k:5s} {b/1e6:7.1f} MB  pred {t*1e6:6.1f} us  " + " ".join(
                f"{a}={v*1e6:.1f}us" if a in ("mem", "mma", "philox", "smem", "reduce") else f"{a}={v:.1f}" if isinstance(v, float) else f"{a}={v}"
                for a, v in d.items()))
