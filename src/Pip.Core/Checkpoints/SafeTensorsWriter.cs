using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Pip.Checkpoints;

/// <summary>Writes safetensors files, single or sharded as Hugging Face does, streaming each tensor's bytes.</summary>
/// <remarks>
/// <para>A file is laid out as the reference implementation does: an 8-byte little-endian header length, a compact JSON
/// header (<c>__metadata__</c> first, default <c>{"format":"pt"}</c>) padded with spaces to a multiple of 8 bytes, then
/// the tensors, ordered by element size (largest first, so every tensor is aligned to its element size) then by name.</para>
/// <para>Sharding follows <c>save_pretrained</c>: tensors are taken in the given order and a new shard starts when
/// the next tensor would push the current one past the limit (a tensor larger than the limit gets a shard of its own).
/// One shard is written as <c>model.safetensors</c>; several as <c>model-00001-of-0000N.safetensors</c> with a
/// <c>model.safetensors.index.json</c>.</para>
/// </remarks>
public static class SafeTensorsWriter
{
    /// <summary>The default shard size limit, 5 GB (decimal, as Hugging Face's "5GB").</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    private const int Alignment = 8;
    private const int BufferSize = 1 << 20;

    private static readonly IReadOnlyDictionary<string, string> DefaultMetadata =
        new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };

    /// <summary>Writes tensors as one safetensors file.</summary>
    /// <param name="path">The file; written under a temporary name and renamed into place when complete.</param>
    /// <param name="tensors">The tensors (unique names).</param>
    /// <param name="metadata">The <c>__metadata__</c> map; null for <c>{"format":"pt"}</c>.</param>
    /// <param name="cancellationToken">Cancels the write; the target is then left as it was.</param>
    /// <exception cref="ArgumentException">Names repeat, or a source writes the wrong number of bytes.</exception>
    public static void Write(string path, IEnumerable<SafeTensorSource> tensors, IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        CheckNames(list);
        var fullPath = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(fullPath)!, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            WriteFile(temp, list, metadata ?? DefaultMetadata, cancellationToken);
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Writes tensors into a folder as <c>model.safetensors</c>, or as numbered shards plus
    /// <c>model.safetensors.index.json</c> when they exceed <paramref name="maxShardBytes"/>.
    /// </summary>
    /// <param name="folder">An existing folder; files of the same names are replaced. For an all-or-nothing
    /// write of a whole checkpoint use <see cref="CheckpointWriter.Save"/>.</param>
    /// <param name="tensors">The tensors (unique names), in the order to distribute them over shards.</param>
    /// <param name="maxShardBytes">The shard size limit in bytes of tensor data.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>The file names written, relative to the folder (the index last, if any).</returns>
    public static IReadOnlyList<string> WriteSharded(string folder, IEnumerable<SafeTensorSource> tensors, long maxShardBytes = DefaultMaxShardBytes, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"The folder '{folder}' does not exist.");
        var list = tensors.ToList();
        CheckNames(list);
        var shards = PlanShards(list, maxShardBytes);
        var written = new List<string>();
        if (shards.Count <= 1)
        {
            WriteFile(Path.Combine(folder, CheckpointFolder.SingleFileName), shards.Count == 0 ? [] : shards[0], DefaultMetadata, cancellationToken);
            written.Add(CheckpointFolder.SingleFileName);
            return written;
        }

        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        for (var i = 0; i < shards.Count; i++)
        {
            var name = string.Create(CultureInfo.InvariantCulture, $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors");
            WriteFile(Path.Combine(folder, name), shards[i], DefaultMetadata, cancellationToken);
            written.Add(name);
            foreach (var t in shards[i])
            {
                weightMap[t.Name] = name;
                total += t.ByteLength;
            }
        }
        WriteIndex(Path.Combine(folder, SafeTensorsIndex.FileName), total, weightMap);
        written.Add(SafeTensorsIndex.FileName);
        return written;
    }

    internal static List<List<SafeTensorSource>> PlanShards(IReadOnlyList<SafeTensorSource> tensors, long maxShardBytes)
    {
        var shards = new List<List<SafeTensorSource>>();
        List<SafeTensorSource>? current = null;
        long currentSize = 0;
        foreach (var t in tensors)
        {
            if (current is null || (current.Count > 0 && currentSize + t.ByteLength > maxShardBytes))
            {
                current = [];
                shards.Add(current);
                currentSize = 0;
            }
            current.Add(t);
            currentSize += t.ByteLength;
        }
        return shards;
    }

    private static void CheckNames(List<SafeTensorSource> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            ArgumentNullException.ThrowIfNull(t, nameof(tensors));
            if (!names.Add(t.Name))
                throw new ArgumentException($"The tensor name '{t.Name}' appears twice.", nameof(tensors));
        }
    }

    private static void WriteIndex(string path, long totalSize, SortedDictionary<string, string> weightMap)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (name, file) in weightMap)
                json.WriteString(name, file);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
        stream.Flush(flushToDisk: true);
    }

    private static void WriteFile(string path, IReadOnlyList<SafeTensorSource> tensors, IReadOnlyDictionary<string, string> metadata, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors files are little-endian; this machine is big-endian.");

        var ordered = tensors
            .OrderByDescending(t => t.DType.ElementSize())
            .ThenBy(t => t.Name, StringComparer.Ordinal)
            .ToList();

        var header = BuildHeader(ordered, metadata);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, BufferSize);
        Span<byte> lengthBytes = stackalloc byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
        stream.Write(lengthBytes);
        stream.Write(header);

        foreach (var t in ordered)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var guard = new ExactLengthStream(stream, t.Name, t.ByteLength, cancellationToken);
            t.WriteBytes(guard, cancellationToken);
            guard.Complete();
        }
        stream.Flush(flushToDisk: true);
    }

    private static byte[] BuildHeader(List<SafeTensorSource> ordered, IReadOnlyDictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                json.WriteString(key, value);
            json.WriteEndObject();
            long offset = 0;
            foreach (var t in ordered)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.ToHeaderString());
                json.WriteStartArray("shape");
                foreach (var d in t.ShapeSpan)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteLength;
            }
            json.WriteEndObject();
        }
        var padding = (Alignment - (int)(buffer.Length % Alignment)) % Alignment;
        for (var i = 0; i < padding; i++)
            buffer.WriteByte((byte)' ');
        if (buffer.Length > SafeTensorsFile.MaxHeaderBytes)
            throw new ArgumentException($"The safetensors header would be {buffer.Length} bytes, over the {SafeTensorsFile.MaxHeaderBytes}-byte limit; write fewer tensors per file.");
        return buffer.ToArray();
    }

    internal static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Passes writes through and enforces that one tensor writes exactly its byte length.</summary>
    private sealed class ExactLengthStream(Stream inner, string tensor, long length, CancellationToken cancellationToken) : Stream
    {
        private long _written;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => length;

        public override long Position
        {
            get => _written;
            set => throw new NotSupportedException();
        }

        public void Complete()
        {
            if (_written != length)
                throw new ArgumentException($"The source of tensor '{tensor}' wrote {_written} bytes; its dtype and shape need {length}.");
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (buffer.Length > length - _written)
                throw new ArgumentException($"The source of tensor '{tensor}' wrote more than the {length} bytes its dtype and shape need.");
            inner.Write(buffer);
            _written += buffer.Length;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void WriteByte(byte value) => Write([value]);

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
