namespace Pip.Checkpoints;

/// <summary>Writes the raw little-endian bytes of one tensor to a stream.</summary>
/// <param name="destination">The stream to write exactly the tensor's byte length to.</param>
/// <param name="cancellationToken">Cancels the write.</param>
public delegate void TensorBytesWriter(Stream destination, CancellationToken cancellationToken);

/// <summary>
/// A tensor to be written to a safetensors file: its name, type and shape, and a callback that streams its bytes.
/// </summary>
/// <remarks>
/// The callback is invoked once, when the writer reaches the tensor, so a model is never held twice in memory. It
/// must write exactly <see cref="ByteLength"/> bytes; writing more, or fewer, is an error.
/// </remarks>
public sealed class SafeTensorSource
{
    private readonly long[] _shape;

    /// <summary>Describes a tensor to write.</summary>
    /// <param name="name">The tensor name (not empty, not <c>__metadata__</c>).</param>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">The shape (empty for a scalar); dimensions must be non-negative.</param>
    /// <param name="writeBytes">Streams the tensor's raw bytes.</param>
    /// <exception cref="ArgumentException">The name or shape is invalid.</exception>
    public SafeTensorSource(string name, SafeTensorDType dtype, IReadOnlyList<long> shape, TensorBytesWriter writeBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(writeBytes);
        if (name == "__metadata__")
            throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor.", nameof(name));
        _ = dtype.ElementSize(); // rejects undefined enum values
        _shape = shape.ToArray();
        try
        {
            ByteLength = dtype.ByteLength(_shape);
        }
        catch (OverflowException e)
        {
            throw new ArgumentException($"The shape [{string.Join(", ", _shape)}] of tensor '{name}' is too large.", nameof(shape), e);
        }
        Name = name;
        DType = dtype;
        WriteBytes = writeBytes;
    }

    /// <summary>The tensor name.</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public SafeTensorDType DType { get; }

    /// <summary>The shape (a fresh copy on each call).</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>The number of bytes the tensor takes.</summary>
    public long ByteLength { get; }

    /// <summary>The callback that streams the bytes.</summary>
    public TensorBytesWriter WriteBytes { get; }

    internal ReadOnlySpan<long> ShapeSpan => _shape;

    /// <summary>A source over bytes already in memory.</summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="dtype">The element type.</param>
    /// <param name="shape">The shape.</param>
    /// <param name="bytes">The raw little-endian bytes; their length must match the shape.</param>
    /// <exception cref="ArgumentException">The length does not match the shape.</exception>
    public static SafeTensorSource FromBytes(string name, SafeTensorDType dtype, IReadOnlyList<long> shape, ReadOnlyMemory<byte> bytes)
    {
        var source = new SafeTensorSource(name, dtype, shape, (stream, _) => stream.Write(bytes.Span));
        if (source.ByteLength != bytes.Length)
            throw new ArgumentException($"Tensor '{name}' of shape [{string.Join(", ", shape)}] and dtype {dtype.ToHeaderString()} needs {source.ByteLength} bytes, got {bytes.Length}.", nameof(bytes));
        return source;
    }
}
