namespace Pip.Checkpoints;

/// <summary>The element types of safetensors files that Pip reads and writes.</summary>
/// <remarks>The names are the dtype strings of the safetensors header.</remarks>
public enum SafeTensorDType
{
    /// <summary>32-bit IEEE float (<c>F32</c>).</summary>
    F32,
    /// <summary>16-bit IEEE float (<c>F16</c>).</summary>
    F16,
    /// <summary>bfloat16 (<c>BF16</c>).</summary>
    BF16,
    /// <summary>64-bit IEEE float (<c>F64</c>).</summary>
    F64,
    /// <summary>64-bit signed integer (<c>I64</c>).</summary>
    I64,
    /// <summary>32-bit signed integer (<c>I32</c>).</summary>
    I32,
    /// <summary>16-bit signed integer (<c>I16</c>).</summary>
    I16,
    /// <summary>8-bit signed integer (<c>I8</c>).</summary>
    I8,
    /// <summary>8-bit unsigned integer (<c>U8</c>).</summary>
    U8,
    /// <summary>Boolean stored as one byte (<c>BOOL</c>).</summary>
    Bool,
}

/// <summary>Helpers for <see cref="SafeTensorDType"/>.</summary>
public static class SafeTensorDTypes
{
    /// <summary>The size in bytes of one element.</summary>
    /// <param name="dtype">The element type.</param>
    public static int ElementSize(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.I16 => 2,
        SafeTensorDType.I8 or SafeTensorDType.U8 or SafeTensorDType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>Whether the type is a floating-point type (F64, F32, F16, BF16).</summary>
    /// <param name="dtype">The element type.</param>
    public static bool IsFloatingPoint(this SafeTensorDType dtype) =>
        dtype is SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64;

    /// <summary>The dtype string of the safetensors header (<c>F32</c>, <c>BF16</c>, <c>BOOL</c>, ...).</summary>
    /// <param name="dtype">The element type.</param>
    public static string ToHeaderString(this SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.Bool => "BOOL",
        SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64
            or SafeTensorDType.I64 or SafeTensorDType.I32 or SafeTensorDType.I16 or SafeTensorDType.I8
            or SafeTensorDType.U8 => dtype.ToString(),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>Parses a dtype string of the safetensors header; false for types Pip does not support.</summary>
    /// <param name="text">The header string, case-sensitive as in the format (<c>F32</c>, <c>BF16</c>, ...).</param>
    /// <param name="dtype">The parsed type.</param>
    public static bool TryParseHeaderString(string text, out SafeTensorDType dtype)
    {
        switch (text)
        {
            case "F32": dtype = SafeTensorDType.F32; return true;
            case "F16": dtype = SafeTensorDType.F16; return true;
            case "BF16": dtype = SafeTensorDType.BF16; return true;
            case "F64": dtype = SafeTensorDType.F64; return true;
            case "I64": dtype = SafeTensorDType.I64; return true;
            case "I32": dtype = SafeTensorDType.I32; return true;
            case "I16": dtype = SafeTensorDType.I16; return true;
            case "I8": dtype = SafeTensorDType.I8; return true;
            case "U8": dtype = SafeTensorDType.U8; return true;
            case "BOOL": dtype = SafeTensorDType.Bool; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>The number of bytes of a tensor of the given type and shape.</summary>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">The shape (empty for a scalar).</param>
    /// <exception cref="ArgumentException">A dimension is negative.</exception>
    /// <exception cref="OverflowException">The size does not fit in 64 bits.</exception>
    public static long ByteLength(this SafeTensorDType dtype, ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0)
                throw new ArgumentException($"Negative dimension {d} in shape [{string.Join(", ", shape.ToArray())}].", nameof(shape));
            count = checked(count * d);
        }
        return checked(count * dtype.ElementSize());
    }
}
