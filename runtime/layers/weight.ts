// A layer's weight as its kernels read it (f32, dequantised once), and a lookup of weight shapes.

export interface Weight {
  data: Float32Array;
  shape: number[];
}

/** Shape of a weight by role, from the stored tensor table (undefined when absent). */
export type WeightShape = (role: string) => number[] | undefined;
