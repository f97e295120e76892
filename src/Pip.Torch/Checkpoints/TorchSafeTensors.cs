using Pip.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Checkpoints;

/// <summary>Loads safetensors checkpoints into TorchSharp tensors and saves tensors as Hugging Face checkpoints.</summary>
/// <remarks>
/// Loading copies each tensor's bytes once, straight from the memory-mapped file into the storage of a new CPU tensor
/// (then converts/moves it if asked); saving streams each tensor's bytes straight from its storage to the file. No
/// managed copy of a tensor is made either way.
/// </remarks>
public static class TorchSafeTensors
{
    /// <summary>The largest piece copied at once (tensors above it are copied in pieces).</summary>
    private const long ChunkBytes = 1L << 30;

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

    internal static unsafe Tensor LoadTensor(SafeTensorsFile file, string name, Device? device, ScalarType? dtype, long chunkBytes)
    {
        ArgumentNullException.ThrowIfNull(file);
        CheckTargetType(dtype);
        var info = file.GetInfo(name);
        var storedType = ToScalarType(info.DType);
        var targetType = dtype is { } d && info.DType.IsFloatingPoint() ? d : storedType;
        var targetDevice = device ?? CPU;

        var cpu = empty(info.Shape, storedType, CPU);
        try
        {
            var source = file.GetPointer(name, out var length);
            CopyInto(cpu, source, length, chunkBytes);
            if (targetType == storedType && targetDevice.type == DeviceType.CPU)
                return cpu;
            var moved = cpu.to(targetType, targetDevice);
            cpu.Dispose();
            return moved;
        }
        catch
        {
            cpu.Dispose();
            throw;
        }
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

    private static unsafe void CopyInto(Tensor destination, byte* source, long length, long chunkBytes)
    {
        if (length == 0)
            return;
        var elementSize = destination.ElementSize;
        using var flat = destination.view(-1);
        var chunkElements = Math.Max(1, chunkBytes / elementSize);
        var count = flat.numel();
        for (long start = 0; start < count; start += chunkElements)
        {
            var n = Math.Min(chunkElements, count - start);
            using var part = flat.narrow(0, start, n);
            new ReadOnlySpan<byte>(source + start * elementSize, checked((int)(n * elementSize))).CopyTo(part.bytes);
        }
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
