// The dynamic shared memory window of a kernel: RS_DYNAMIC_SMEM(smem); declares
// `unsigned char* smem`, 1024-byte aligned (the launch passes its size; see the table's smem
// column). A macro because the CPU emulation makes __shared__ `static`, and `extern static` does
// not compile there: it gets the block's window from the emulation instead.
#pragma once
#if defined(RS_EMULATE)
#define RS_DYNAMIC_SMEM(name) unsigned char* const name = ::rs_emu::dynamic_smem()
#else
#define RS_DYNAMIC_SMEM(name)                                   \
    extern __shared__ __align__(1024) unsigned char name##_[]; \
    unsigned char* const name = name##_
#endif
