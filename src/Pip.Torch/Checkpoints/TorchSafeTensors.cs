using Pip.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Checkpoints;

/// <summary>Loads safetensors checkpoints into TorchSharp tensors and saves tensors as Hugging Face checkpoints.</summary>
/// <remarks>
/// <para>Loading reads each tensor's bytes once, with positional file reads (<see cref="SafeTensorsFile.ReadBytes"/>),
/// straight into the storage of a tensor allocated once in the target type: no whole-file copy, no resident pages of
/// the mapping, no intermediate copy when the target type is the stored one. When the type or device differs, the
/// bytes pass through one small staging buffer (<see cref="StagingBytes"/>) and are converted piece by piece, so the
/// peak is the target tensors plus that buffer. <see cref="LoadInto(CheckpointFolder, IReadOnlyDictionary{string, Tensor}, CancellationToken)"/>
/// fills tensors that already exist (a model's parameters), which is how <see cref="TorchCausalLM.Load(string, TorchLoadOptions, CancellationToken)"/> loads a model
/// at the memory of its weights.</para>
/// <para>Saving streams each tensor's bytes straight from its storage to the file. No managed copy of a tensor is
/// made either way.</para>
/// </remarks>
public static class TorchSafeTensors
{
    /// <summary>The largest piece copied at once (tensors above it are copied in pieces).</summary>
    private const long ChunkBytes = 1L << 30;

    /// <summary>The size of the staging buffer used when a tensor is converted or moved while loading: 64 MiB.</summary>
    public const long StagingBytes = 64L << 20;

    /// <summary>Loads every tensor of a checkpoint.</summary>
    /// <param name="folder">The open checkpoint.</param>
    /// <param name="device">The device to put the tensors on; null for the CPU.</param>
    /// <param name="dtype">The floating-point type to convert floating-point tensors to (Float32, Float16, BFloat16 or
    /// Float64); null to keep the stored types. Integer and boolean tensors are never converted.</param>
    /// <param name="include">Loads only the tensors whose name it accepts; null for all.</param>
    /// <returns>Name → tensor, owned by the caller (and by the caller's dispose scope, if one is open).</returns>
    /// <exception cref="CheckpointFormatException">A weight file is malformed.</exception>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not a floating-point type.</exception>
    public static Dictionary<string, Tensor> Load(CheckpointFolder folder, Device? device = null, ScalarType? dtype = null, Func<string, bool>? include = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        CheckTargetType(dtype);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            // File by file, in data order, so reads of the mapping are sequential.
            foreach (var shard in folder.ShardFiles)
            {
                var file = folder.OpenShard(shard);
                foreach (var info in file.Tensors)
                {
                    if (!folder.Contains(info.Name) || (include is not null && !include(info.Name)))
                        continue;
                    if (folder.GetFile(info.Name) != file)
                        continue; // the index puts this name in another shard
                    result.Add(info.Name, LoadTensor(file, info.Name, device, dtype));
                }
            }
            var missing = folder.TensorNames.Where(n => !result.ContainsKey(n) && (include is null || include(n))).ToList();
            if (missing.Count > 0)
                throw new CheckpointFormatException(folder.FolderPath, $"{missing.Count} tensors of the index were not found in their shards: {string.Join(", ", missing.Take(10))}");
            return result;
        }
        catch
        {
            foreach (var t in result.Values)
                t.Dispose();
            throw;
        }
    }

    /// <summary>Loads one tensor of a checkpoint.</summary>
    /// <param name="folder">The open checkpoint.</param>
    /// <param name="name">The tensor name.</param>
    /// <param name="device">The target device; null for the CPU.</param>
    /// <param name="dtype">The floating-point type to convert to; null to keep the stored type.</param>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    public static Tensor LoadTensor(CheckpointFolder folder, string name, Device? device = null, ScalarType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        return LoadTensor(folder.GetFile(name), name, device, dtype);
    }

    /// <summary>Loads one tensor of a safetensors file.</summary>
    /// <param name="file">The open file.</param>
    /// <param name="name">The tensor name.</param>
    /// <param name="device">The target device; null for the CPU.</param>
    /// <param name="dtype">The floating-point type to convert to; null to keep the stored type.</param>
    /// <exception cref="KeyNotFoundException">No such tensor.</exception>
    public static Tensor LoadTensor(SafeTensorsFile file, string name, Device? device = null, ScalarType? dtype = null) =>
        LoadTensor(file, name, device, dtype, ChunkBytes);

    internal static Tensor LoadTensor(SafeTensorsFile file, string name, Device? device, ScalarType? dtype, long chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(file);
        CheckTargetType(dtype);
        var info = file.GetInfo(name);
        var storedType = ToScalarType(info.DType);
        var targetType = dtype is { } d && info.DType.IsFloatingPoint() ? d : storedType;
        var result = empty(info.Shape, targetType, device ?? CPU);
        try
        {
            ReadInto(file, info, result, chunkBytes, Math.Min(chunkBytes, StagingBytes), CancellationToken.None);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Fills existing tensors (a model's parameters, say) with a checkpoint's tensors, in file order, reading each
    /// tensor's bytes straight into the destination's storage when it is a contiguous CPU tensor of the stored type, and
    /// through a <see cref="StagingBytes"/> buffer (converting type and moving device piece by piece) otherwise.
    /// </summary>
    /// <param name="folder">The open checkpoint.</param>
    /// <param name="destinations">Checkpoint tensor name → the tensor to fill, of the same shape (any floating type and
    /// device for a floating-point tensor; the stored type for integer and boolean tensors). Written under no_grad.</param>
    /// <param name="cancellationToken">Cancels the load between pieces; the destinations are then partly filled.</param>
    /// <exception cref="KeyNotFoundException">The checkpoint has no tensor of a given name.</exception>
    /// <exception cref="CheckpointFormatException">A shape differs from the destination's, a type cannot be converted,
    /// or a weight file is malformed or truncated; the message names the file and the tensor.</exception>
    public static void LoadInto(CheckpointFolder folder, IReadOnlyDictionary<string, Tensor> destinations, CancellationToken cancellationToken = default) =>
        LoadInto(folder, destinations, ChunkBytes, StagingBytes, cancellationToken);

    internal static void LoadInto(CheckpointFolder folder, IReadOnlyDictionary<string, Tensor> destinations, long chunkBytes, long stagingBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(destinations);
        var work = destinations
            .Select(p => (File: folder.GetFile(p.Key), Name: p.Key, Destination: p.Value ?? throw new ArgumentException($"The destination of '{p.Key}' is null.", nameof(destinations))))
            .Select(w => (w.File, Info: w.File.GetInfo(w.Name), w.Destination))
            .OrderBy(w => w.File.FilePath, StringComparer.Ordinal)
            .ThenBy(w => w.Info.Begin)
            .ToList();
        foreach (var (file, info, destination) in work)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ReadInto(file, info, destination, chunkBytes, stagingBytes, cancellationToken);
        }
    }

    private static void ReadInto(SafeTensorsFile file, SafeTensorInfo info, Tensor destination, long chunkBytes, long stagingBytes, CancellationToken cancellationToken)
    {
        var storedType = ToScalarType(info.DType);
        if (!destination.shape.SequenceEqual(info.Shape))
            throw new CheckpointFormatException(file.FilePath, $"the tensor has shape [{string.Join(", ", info.Shape)}] but the model expects [{string.Join(", ", destination.shape)}]", info.Name);
        if (destination.dtype != storedType && !(info.DType.IsFloatingPoint() && destination.is_floating_point()))
            throw new CheckpointFormatException(file.FilePath, $"the tensor is {info.DType.ToHeaderString()} and cannot be loaded into a {destination.dtype} tensor", info.Name);
        if (info.ByteLength == 0)
            return;

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var elementSize = info.DType.ElementSize();
        var count = info.ElementCount;
        if (destination.dtype == storedType && destination.device_type == DeviceType.CPU && destination.is_contiguous())
        {
            // The common case: straight from the file into the tensor's own storage, nothing in between.
            var whole = destination.view(-1);
            var pieceElements = Math.Max(1, Math.Min(chunkBytes, int.MaxValue) / elementSize);
            for (long start = 0; start < count; start += pieceElements)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var part = whole.narrow(0, start, Math.Min(pieceElements, count - start));
                file.ReadBytes(info.Name, start * elementSize, part.bytes);
            }
            return;
        }

        var chunkElements = Math.Max(1, Math.Min(stagingBytes, int.MaxValue) / elementSize);
        var staging = empty(Math.Min(chunkElements, count), storedType, CPU);
        // A non-contiguous destination is filled through a contiguous copy of itself.
        var flat = destination.is_contiguous() ? destination.view(-1) : empty(count, destination.dtype, destination.device);
        for (long start = 0; start < count; start += chunkElements)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(chunkElements, count - start);
            using var source = staging.narrow(0, 0, n);
            file.ReadBytes(info.Name, start * elementSize, source.bytes);
            using var part = flat.narrow(0, start, n);
            part.copy_(source);
        }
        if (!destination.is_contiguous())
            destination.copy_(flat.view(destination.shape));
    }

    /// <summary>Saves tensors as a Hugging Face checkpoint folder (config.json, safetensors weights, extra files), all or nothing.</summary>
    /// <param name="destinationFolder">The folder to write; see <see cref="CheckpointWriter.Save"/> for overwrite rules.</param>
    /// <param name="config">The configuration to save as <c>config.json</c>.</param>
    /// <param name="tensors">Name → tensor, in the order to distribute over shards (any device, contiguous or not).</param>
    /// <param name="options">Save options; null for the defaults.</param>
    /// <param name="dtype">The floating-point type to store floating-point tensors as; null to keep each tensor's type.</param>
    /// <param name="cancellationToken">Cancels the save; the destination is then left as it was.</param>
    public static void Save(string destinationFolder, IModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> tensors, CheckpointSaveOptions? options = null, ScalarType? dtype = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        CheckTargetType(dtype);
        var sources = tensors.Select(p => ToSource(p.Key, p.Value, dtype)).ToList();
        CheckpointWriter.Save(destinationFolder, config, sources, options, cancellationToken);
    }

    /// <summary>Saves tensors as one safetensors file.</summary>
    /// <param name="path">The file to write (replaced when complete).</param>
    /// <param name="tensors">Name → tensor.</param>
    /// <param name="dtype">The floating-point type to store floating-point tensors as; null to keep each tensor's type.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    public static void SaveFile(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, ScalarType? dtype = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        CheckTargetType(dtype);
        SafeTensorsWriter.Write(path, tensors.Select(p => ToSource(p.Key, p.Value, dtype)).ToList(), null, cancellationToken);
    }

    /// <summary>Describes a tensor for <see cref="SafeTensorsWriter"/>; its bytes are read from its storage when written.</summary>
    /// <param name="name">The tensor name.</param>
    /// <param name="tensor">The tensor; it must stay alive until written.</param>
    /// <param name="dtype">The floating-point type to store it as, if it is floating-point; null to keep its type.</param>
    public static SafeTensorSource ToSource(string name, Tensor tensor, ScalarType? dtype = null) =>
        ToSource(name, tensor, dtype, ChunkBytes);

    internal static SafeTensorSource ToSource(string name, Tensor tensor, ScalarType? dtype, long chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        CheckTargetType(dtype);
        var stored = ToSafeTensorDType(tensor.dtype);
        var targetType = dtype is { } d && stored.IsFloatingPoint() ? d : tensor.dtype;
        return new SafeTensorSource(name, ToSafeTensorDType(targetType), tensor.shape, (stream, ct) => WriteTensor(tensor, targetType, stream, chunkBytes, ct));
    }

    /// <summary>The TorchSharp type of a safetensors dtype.</summary>
    /// <param name="dtype">The safetensors dtype.</param>
    public static ScalarType ToScalarType(SafeTensorDType dtype) => dtype switch
    {
        SafeTensorDType.F32 => ScalarType.Float32,
        SafeTensorDType.F16 => ScalarType.Float16,
        SafeTensorDType.BF16 => ScalarType.BFloat16,
        SafeTensorDType.F64 => ScalarType.Float64,
        SafeTensorDType.I64 => ScalarType.Int64,
        SafeTensorDType.I32 => ScalarType.Int32,
        SafeTensorDType.I16 => ScalarType.Int16,
        SafeTensorDType.I8 => ScalarType.Int8,
        SafeTensorDType.U8 => ScalarType.Byte,
        SafeTensorDType.Bool => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>The safetensors dtype of a TorchSharp type.</summary>
    /// <param name="type">The TorchSharp type.</param>
    /// <exception cref="ArgumentException">The type has no safetensors counterpart Pip supports (complex types).</exception>
    public static SafeTensorDType ToSafeTensorDType(ScalarType type) => type switch
    {
        ScalarType.Float32 => SafeTensorDType.F32,
        ScalarType.Float16 => SafeTensorDType.F16,
        ScalarType.BFloat16 => SafeTensorDType.BF16,
        ScalarType.Float64 => SafeTensorDType.F64,
        ScalarType.Int64 => SafeTensorDType.I64,
        ScalarType.Int32 => SafeTensorDType.I32,
        ScalarType.Int16 => SafeTensorDType.I16,
        ScalarType.Int8 => SafeTensorDType.I8,
        ScalarType.Byte => SafeTensorDType.U8,
        ScalarType.Bool => SafeTensorDType.Bool,
        _ => throw new ArgumentException($"The tensor type {type} cannot be stored in a safetensors file by Pip.", nameof(type)),
    };

    private static void CheckTargetType(ScalarType? dtype)
    {
        if (dtype is { } d && d is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"The target type must be Float32, Float16, BFloat16 or Float64, not {d}.", nameof(dtype));
    }

    private static void WriteTensor(Tensor tensor, ScalarType targetType, Stream stream, long chunkBytes, CancellationToken cancellationToken)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var t = tensor.detach();
        if (t.dtype != targetType)
            t = t.to(targetType);
        if (t.device_type != DeviceType.CPU)
            t = t.cpu();
        if (!t.is_contiguous())
            t = t.contiguous();
        var count = t.numel();
        if (count == 0)
            return;
        var flat = t.reshape(-1);
        var chunkElements = Math.Max(1, chunkBytes / flat.ElementSize);
        for (long start = 0; start < count; start += chunkElements)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(chunkElements, count - start);
            using var part = flat.narrow(0, start, n);
            stream.Write(part.bytes);
        }
    }
}
