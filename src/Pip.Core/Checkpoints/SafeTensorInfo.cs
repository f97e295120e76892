namespace Pip.Checkpoints;

/// <summary>One tensor entry of a safetensors header.</summary>
public sealed class SafeTensorInfo
{
    private readonly long[] _shape;

    internal SafeTensorInfo(string name, SafeTensorDType dtype, long[] shape, long begin, long end)
    {
        Name = name;
        DType = dtype;
        _shape = shape;
        Begin = begin;
        End = end;
    }

    /// <summary>The tensor name (a Hugging Face parameter key such as <c>model.layers.0.mlp.up_proj.weight</c>).</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public SafeTensorDType DType { get; }

    /// <summary>The shape (a fresh copy on each call; empty for a scalar).</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>The number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>The start of the tensor's bytes, relative to the start of the data section.</summary>
    public long Begin { get; }

    /// <summary>The end (exclusive) of the tensor's bytes, relative to the start of the data section.</summary>
    public long End { get; }

    /// <summary>The number of bytes, <c>End - Begin</c>.</summary>
    public long ByteLength => End - Begin;

    /// <summary>The number of elements.</summary>
    public long ElementCount => ByteLength / DType.ElementSize();

    /// <summary>The size of dimension <paramref name="dim"/>.</summary>
    /// <param name="dim">The dimension index.</param>
    public long Dim(int dim) => _shape[dim];

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {DType.ToHeaderString()}[{string.Join(", ", _shape)}]";
}
