using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using System.Text.Json;
using System.Text.Unicode;

namespace Pip.Checkpoints;

/// <summary>
/// A safetensors file opened read-only and memory-mapped: the header is parsed and validated on open; tensor bytes
/// are read straight from the mapping, never copied into managed memory by this class.
/// </summary>
/// <remarks>
/// <para>Validation is strict: the 8-byte little-endian header length must be at most <see cref="MaxHeaderBytes"/>
/// and fit in the file; the header must be valid UTF-8 and a JSON object; each entry needs <c>dtype</c> (a known type),
/// <c>shape</c> (non-negative integers) and <c>data_offsets</c> (two integers, begin ≤ end, inside the data
/// section) with <c>end - begin == product(shape) × element size</c>; tensors may not overlap and names may not repeat;
/// <c>__metadata__</c> must map strings to strings. Every violation is a <see cref="CheckpointFormatException"/>.
/// Gaps between tensors are tolerated.</para>
/// <para><see cref="ReadBytes"/> reads with positional file reads instead of through the mapping, so the bytes land
/// directly in the caller's buffer (a tensor's storage, say) and no page of the mapping becomes resident in this
/// process: loading a model that way costs the model's memory once, not twice.</para>
/// <para>Spans and pointers handed out stay valid only until <see cref="Dispose"/>. The instance is safe for
/// concurrent reads; do not dispose it while it is being read.</para>
/// </remarks>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>The largest header accepted, in bytes (the limit of the reference implementation).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly Dictionary<string, SafeTensorInfo> _byName;
    private readonly SafeFileHandle _reader;
    private byte* _base;
    private int _disposed;

    private SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePointer, long fileLength, SafeFileHandle reader)
    {
        FilePath = path;
        _reader = reader;
        _map = map;
        _view = view;
        _base = basePointer;
        FileLength = fileLength;
        _byName = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        Tensors = Array.Empty<SafeTensorInfo>();
        Metadata = new Dictionary<string, string>(StringComparer.Ordinal);
    }

    /// <summary>The full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>The length of the file in bytes.</summary>
    public long FileLength { get; }

    /// <summary>The offset of the data section from the start of the file (8 + header length).</summary>
    public long DataOffset { get; private set; }

    /// <summary>The tensors, ordered by their position in the data section.</summary>
    public IReadOnlyList<SafeTensorInfo> Tensors { get; private set; }

    /// <summary>The <c>__metadata__</c> map of the header (empty if absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; private set; }

    /// <summary>Opens and validates a safetensors file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The open file; dispose it to release the mapping.</returns>
    /// <exception cref="CheckpointFormatException">The file is not a valid safetensors file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors files are little-endian; this machine is big-endian.");
        var fullPath = Path.GetFullPath(path);
        var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        SafeFileHandle? reader = null;
        SafeTensorsFile? file = null;
        try
        {
            var length = stream.Length;
            if (length < 8)
                throw new CheckpointFormatException(fullPath, $"the file is {length} bytes long, too short for the 8-byte header length of a safetensors file");
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            pointer += view.PointerOffset;
            reader = File.OpenHandle(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.None);
            file = new SafeTensorsFile(fullPath, map, view, pointer, length, reader);
            file.ParseHeader();
            return file;
        }
        catch
        {
            if (file is not null)
                file.Dispose();
            else
            {
                reader?.Dispose();
                view?.Dispose();
                map?.Dispose();
                stream.Dispose();
            }
            throw;
        }
    }

    /// <summary>Whether the file holds a tensor of this name.</summary>
    /// <param name="name">The tensor name.</param>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks up a tensor by name.</summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="info">The entry, if found.</param>
    public bool TryGetInfo(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SafeTensorInfo? info) =>
        _byName.TryGetValue(name, out info);

    /// <summary>The entry of a tensor.</summary>
    /// <param name="name">The tensor name.</param>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    public SafeTensorInfo GetInfo(string name) =>
        _byName.TryGetValue(name, out var info)
            ? info
            : throw new KeyNotFoundException($"The safetensors file '{FilePath}' has no tensor named '{name}'.");

    /// <summary>The raw little-endian bytes of a tensor smaller than 2 GiB, straight from the mapping.</summary>
    /// <param name="name">The tensor name.</param>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    /// <exception cref="InvalidOperationException">The tensor is 2 GiB or larger; use <see cref="GetPointer"/>.</exception>
    /// <remarks>The span is valid until the file is disposed.</remarks>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var pointer = GetPointer(name, out var length);
        if (length > int.MaxValue)
            throw new InvalidOperationException($"Tensor '{name}' of '{FilePath}' is {length} bytes, too large for a span; use GetPointer.");
        return new ReadOnlySpan<byte>(pointer, (int)length);
    }

    /// <summary>A pointer to the raw little-endian bytes of a tensor of any size, straight from the mapping.</summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="length">The number of bytes.</param>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    /// <remarks>The memory is read-only and valid until the file is disposed; it need not be aligned.</remarks>
    public byte* GetPointer(string name, out long length)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var info = GetInfo(name);
        length = info.ByteLength;
        return _base + DataOffset + info.Begin;
    }

    /// <summary>
    /// Reads part of a tensor's bytes into a buffer with positional file reads (not through the mapping), so that the
    /// bytes are copied once, from the file (or the page cache) straight into <paramref name="destination"/>.
    /// </summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="offset">The offset into the tensor's bytes.</param>
    /// <param name="destination">The buffer; exactly its length is read.</param>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range runs outside the tensor's bytes.</exception>
    /// <exception cref="CheckpointFormatException">The file ended early (it was truncated after it was opened).</exception>
    /// <remarks>Safe for concurrent calls.</remarks>
    public void ReadBytes(string name, long offset, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var info = GetInfo(name);
        if (offset < 0 || offset > info.ByteLength || destination.Length > info.ByteLength - offset)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Bytes [{offset}, {offset + destination.Length}) lie outside the {info.ByteLength} bytes of tensor '{name}' of '{FilePath}'.");
        var position = DataOffset + info.Begin + offset;
        while (!destination.IsEmpty)
        {
            var read = RandomAccess.Read(_reader, destination, position);
            if (read <= 0)
                throw Error($"the file ended at byte {position} while reading the tensor; was it truncated after it was opened?", name);
            destination = destination[read..];
            position += read;
        }
    }

    /// <summary>Releases the mapping and the file.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (_base is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view.Dispose();
        _map.Dispose();
        _reader.Dispose();
    }

    private CheckpointFormatException Error(string problem, string? tensor = null) => new(FilePath, problem, tensor);

    private void ParseHeader()
    {
        var headerLength = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_base, 8));
        if (headerLength > MaxHeaderBytes)
            throw Error($"the header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes");
        if (headerLength > (ulong)(FileLength - 8))
            throw Error($"the header length {headerLength} exceeds the {FileLength - 8} bytes that follow the length field");
        if (headerLength < 2)
            throw Error($"the header length {headerLength} is too short for a JSON object");
        DataOffset = 8 + (long)headerLength;
        var dataLength = FileLength - DataOffset;

        var header = new ReadOnlySpan<byte>(_base + 8, (int)headerLength);
        if (!Utf8.IsValid(header))
            throw Error("the header is not valid UTF-8");
        if (header[0] != (byte)'{')
            throw Error("the header does not start with '{'");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(FilePath, $"the header is not valid JSON: {e.Message}", null, e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Error("the header is not a JSON object");
            var tensors = new List<SafeTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seenMetadata = false;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (seenMetadata)
                        throw Error("the header has '__metadata__' twice");
                    seenMetadata = true;
                    ParseMetadata(property.Value, metadata);
                    continue;
                }
                var info = ParseEntry(property.Name, property.Value, dataLength);
                if (!_byName.TryAdd(info.Name, info))
                    throw Error("the tensor name appears twice in the header", info.Name);
                tensors.Add(info);
            }

            tensors.Sort(static (a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (var i = 1; i < tensors.Count; i++)
            {
                var previous = tensors[i - 1];
                var current = tensors[i];
                if (current.Begin < previous.End)
                    throw Error($"the bytes [{current.Begin}, {current.End}) overlap those of '{previous.Name}' [{previous.Begin}, {previous.End})", current.Name);
            }
            Tensors = tensors.AsReadOnly();
            Metadata = metadata;
        }
    }

    private void ParseMetadata(JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null)
            return;
        if (value.ValueKind != JsonValueKind.Object)
            throw Error($"'__metadata__' must be an object of strings, found {value.ValueKind}", MetadataKey);
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw Error($"'__metadata__' entry '{entry.Name}' must be a string, found {entry.Value.ValueKind}", MetadataKey);
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw Error($"'__metadata__' has the key '{entry.Name}' twice", MetadataKey);
        }
    }

    private SafeTensorInfo ParseEntry(string name, JsonElement value, long dataLength)
    {
        if (name.Length == 0)
            throw Error("a tensor has an empty name");
        if (value.ValueKind != JsonValueKind.Object)
            throw Error($"the entry must be an object, found {value.ValueKind}", name);

        JsonElement? dtypeElement = null, shapeElement = null, offsetsElement = null;
        foreach (var field in value.EnumerateObject())
        {
            switch (field.Name)
            {
                case "dtype": dtypeElement = Once(dtypeElement, field); break;
                case "shape": shapeElement = Once(shapeElement, field); break;
                case "data_offsets": offsetsElement = Once(offsetsElement, field); break;
                default: break; // unknown keys are ignored, as by the reference implementation
            }
        }

        JsonElement Once(JsonElement? previous, JsonProperty field) =>
            previous is null ? field.Value : throw Error($"the entry has '{field.Name}' twice", name);

        if (dtypeElement is not { } dtypeValue)
            throw Error("the entry has no 'dtype'", name);
        if (dtypeValue.ValueKind != JsonValueKind.String)
            throw Error($"'dtype' must be a string, found {dtypeValue.ValueKind}", name);
        var dtypeText = dtypeValue.GetString()!;
        if (!SafeTensorDTypes.TryParseHeaderString(dtypeText, out var dtype))
            throw Error($"unknown or unsupported dtype '{dtypeText}' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)", name);

        if (shapeElement is not { } shapeValue)
            throw Error("the entry has no 'shape'", name);
        if (shapeValue.ValueKind != JsonValueKind.Array)
            throw Error($"'shape' must be an array of integers, found {shapeValue.ValueKind}", name);
        var shape = new long[shapeValue.GetArrayLength()];
        var i = 0;
        foreach (var d in shapeValue.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var size) || size < 0)
                throw Error($"'shape' must hold non-negative integers, found {d.GetRawText()}", name);
            shape[i++] = size;
        }

        if (offsetsElement is not { } offsetsValue)
            throw Error("the entry has no 'data_offsets'", name);
        if (offsetsValue.ValueKind != JsonValueKind.Array || offsetsValue.GetArrayLength() != 2)
            throw Error($"'data_offsets' must be an array of two integers, found {offsetsValue.GetRawText()}", name);
        var begin = Offset(offsetsValue[0]);
        var end = Offset(offsetsValue[1]);

        long Offset(JsonElement e) =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var v) && v >= 0
                ? v
                : throw Error($"'data_offsets' must hold non-negative integers, found {e.GetRawText()}", name);

        if (end < begin)
            throw Error($"'data_offsets' [{begin}, {end}] end before they begin", name);
        if (end > dataLength)
            throw Error($"'data_offsets' [{begin}, {end}] run past the end of the data section ({dataLength} bytes)", name);

        long expected;
        try
        {
            expected = dtype.ByteLength(shape);
        }
        catch (OverflowException)
        {
            throw Error($"the shape [{string.Join(", ", shape)}] is too large", name);
        }
        if (expected != end - begin)
            throw Error($"shape [{string.Join(", ", shape)}] of {dtypeText} needs {expected} bytes but 'data_offsets' [{begin}, {end}] span {end - begin}", name);

        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }
}
