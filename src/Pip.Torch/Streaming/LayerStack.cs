using Microsoft.Win32.SafeHandles;
using Pip.Checkpoints;
using Pip.Torch.Checkpoints;
using Pip.Torch.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Streaming;

/// <summary>One decoder layer made available by an <see cref="ILayerStack"/>; disposing it releases the layer's weights when they were loaded for it.</summary>
internal sealed class LayerLease : IDisposable
{
    private readonly bool _owned;

    public LayerLease(int layer, nn.Module module, bool owned)
    {
        Layer = layer;
        Module = module;
        _owned = owned;
    }

    public int Layer { get; }

    public nn.Module Module { get; }

    public void Dispose()
    {
        if (_owned) Module.Dispose();
    }
}

/// <summary>
/// Where a <see cref="LayerEngine"/> gets a model's pieces from: the resident layers of a loaded model, or a
/// checkpoint read one layer at a time.
/// </summary>
internal interface ILayerStack
{
    IModelConfig Config { get; }

    Device Device { get; }

    ScalarType ComputeType { get; }

    bool IsStreaming { get; }

    int LayerCount { get; }

    IReadOnlyList<int> OriginalLayerIndices { get; }

    long LayerParameterCount(int layer);

    /// <summary>Above this many bytes of layer-boundary hidden states, a gradient pass keeps them in a temporary file (resident: never).</summary>
    long SpillThresholdBytes { get; }

    /// <summary>Where spill files go; null for the system's temporary folder.</summary>
    string? SpillDirectory { get; }

    /// <summary>Vocabulary rows of the head computed at once (the whole vocabulary for a resident model).</summary>
    long HeadChunkRows { get; }

    LayerLease Acquire(int layer);

    Tensor Embed(Tensor inputIds);

    DecoderLayerContext CreateLayerContext(long length, long batch);

    Tensor ForwardLayer(LayerLease layer, Tensor hidden, DecoderLayerContext context);

    Tensor FinalNorm(Tensor hidden);

    /// <summary>Logits of vocabulary rows [start, start + count) for normalised hidden states.</summary>
    Tensor HeadLogits(Tensor normalised, long start, long count);
}

/// <summary>The layers of a model in memory: nothing is loaded or released.</summary>
internal sealed class ResidentLayerStack(ICausalLMModule model, IReadOnlyList<int>? originalIndices) : ILayerStack
{
    public IModelConfig Config => model.Config;

    public Device Device => model.Device;

    public ScalarType ComputeType => model.Dtype;

    public bool IsStreaming => false;

    public int LayerCount => model.Layers.Count;

    public IReadOnlyList<int> OriginalLayerIndices => originalIndices ?? Enumerable.Range(0, LayerCount).ToArray();

    public long HeadChunkRows => model.Config.VocabSize;

    public long SpillThresholdBytes => long.MaxValue;

    public string? SpillDirectory => null;

    public long LayerParameterCount(int layer) => model.Layers[layer].parameters().Sum(p => p.numel());

    public LayerLease Acquire(int layer) => new(layer, model.Layers[layer], owned: false);

    public Tensor Embed(Tensor inputIds) => model.Embed(inputIds);

    public DecoderLayerContext CreateLayerContext(long length, long batch) => model.CreateLayerContext(length, batch);

    public Tensor ForwardLayer(LayerLease layer, Tensor hidden, DecoderLayerContext context) => model.ForwardLayer(layer.Layer, hidden, context);

    public Tensor FinalNorm(Tensor hidden) => model.FinalNorm(hidden);

    public Tensor HeadLogits(Tensor normalised, long start, long count)
    {
        if (start != 0 || count != model.Config.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(count), "A resident model computes its head in one piece.");
        return model.LmHead(normalised);
    }
}

/// <summary>
/// A Llama-layout checkpoint read one tensor at a time with positioned reads (no memory mapping, so the process's
/// resident memory does not grow with the file): a decoder layer is built when acquired and freed when released, the
/// embedding rows of the batch's tokens are read on demand, the head is read in vocabulary chunks. Only the final norm
/// stays resident. The kept layers are a subset of the checkpoint's (<see cref="OriginalLayerIndices"/>).
/// </summary>
internal sealed class CheckpointLayerStack : ILayerStack, IDisposable
{
    private readonly CheckpointFolder _folder;
    private readonly Dictionary<string, SafeFileHandle> _handles = new(StringComparer.Ordinal);
    private readonly RotaryEmbedding _rotary;
    private readonly RmsNorm _norm;
    private readonly string _headName;
    private readonly Dictionary<int, long> _layerCounts = [];
    private readonly object _gate = new();

    public CheckpointLayerStack(string folderPath, LlamaConfig config, ScalarType computeType, Device? device, long headChunkRows, long spillThresholdBytes = long.MaxValue, string? spillDirectory = null)
    {
        SpillThresholdBytes = spillThresholdBytes;
        SpillDirectory = spillDirectory;
        _folder = CheckpointFolder.Open(folderPath);
        try
        {
            LlamaModel.ValidateConfig(config);
            LlamaConfig = config;
            ComputeType = computeType;
            Device = device ?? CPU;
            HeadChunkRows = Math.Max(1, Math.Min(headChunkRows, config.VocabSize));
            _rotary = new RotaryEmbedding(config);
            _headName = config.TieWordEmbeddings || !_folder.Contains(LlamaForCausalLM.LmHeadWeightName)
                ? LlamaForCausalLM.EmbedTokensWeightName
                : LlamaForCausalLM.LmHeadWeightName;
            if (!config.TieWordEmbeddings && _headName != LlamaForCausalLM.LmHeadWeightName)
                throw new CheckpointFormatException(folderPath, $"the configuration has untied embeddings but the checkpoint has no '{LlamaForCausalLM.LmHeadWeightName}'");
            var kept = new List<int>();
            for (int l = 0; l < config.NumHiddenLayers; l++) kept.Add(l);
            OriginalLayerIndices = kept;
            _norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, computeType, Device);
            using (no_grad())
            using (var w = ReadTensor("model.norm.weight"))
                _norm.Weight.copy_(w);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public LlamaConfig LlamaConfig { get; }

    public IModelConfig Config => LlamaConfig;

    public Device Device { get; }

    public ScalarType ComputeType { get; }

    public bool IsStreaming => true;

    public int LayerCount => OriginalLayerIndices.Count;

    /// <summary>The checkpoint's indices of the layers still in the model (settable by the owner when layers are removed).</summary>
    public IReadOnlyList<int> OriginalLayerIndices { get; set; }

    public long HeadChunkRows { get; }

    public long SpillThresholdBytes { get; }

    public string? SpillDirectory { get; }

    public CheckpointFolder Folder => _folder;

    /// <summary>Seconds spent reading weights from the files (for benchmarks).</summary>
    public double ReadSeconds { get; private set; }

    /// <summary>Bytes read from the files (for benchmarks).</summary>
    public long BytesRead { get; private set; }

    public long LayerParameterCount(int layer)
    {
        int original = OriginalLayerIndices[layer];
        lock (_gate)
        {
            if (!_layerCounts.TryGetValue(original, out var count))
            {
                var prefix = LayerPrefix(original);
                count = _folder.TensorNames.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Sum(n => _folder.GetInfo(n).ElementCount);
                _layerCounts[original] = count;
            }

            return count;
        }
    }

    public static string LayerPrefix(int originalLayer) => $"model.layers.{originalLayer}.";

    /// <summary>Why layers cannot be read any more (the model was changed in a way reading does not follow), or null.</summary>
    public string? Obstacle { get; set; }

    public LayerLease Acquire(int layer)
    {
        if (Obstacle is not null) throw new InvalidOperationException($"This model cannot be run: {Obstacle}");
        int original = OriginalLayerIndices[layer];
        var module = new LlamaDecoderLayer(LlamaConfig, LlamaConfig.ShapeOf(original), ComputeType, Device);
        try
        {
            var prefix = LayerPrefix(original);
            using var noGrad = no_grad();
            foreach (var (name, p) in module.named_parameters())
            {
                using var w = ReadTensor(prefix + name);
                if (!w.shape.SequenceEqual(p.shape))
                    throw new CheckpointFormatException(_folder.FolderPath, $"'{prefix + name}' has shape [{string.Join(", ", w.shape)}], the configuration needs [{string.Join(", ", p.shape)}]");
                p.copy_(w);
            }

            return new LayerLease(layer, module, owned: true);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    public Tensor Embed(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var ids = inputIds.reshape(-1).cpu();
        var unique = ids.unique(sorted: true, return_inverse: true);
        var rows = unique.output.data<long>().ToArray();
        var table = ReadRows(LlamaForCausalLM.EmbedTokensWeightName, rows);
        var result = table.index_select(0, unique.inverse_indices!.to(table.device)).reshape([.. inputIds.shape, LlamaConfig.HiddenSize]);
        return result.MoveToOuterDisposeScope();
    }

    public DecoderLayerContext CreateLayerContext(long length, long batch) =>
        new(length, batch, _rotary.Compute(0, length, batch, ComputeType, Device), null);

    public Tensor ForwardLayer(LayerLease layer, Tensor hidden, DecoderLayerContext context) =>
        ((LlamaDecoderLayer)layer.Module).call(hidden, context.Rotary!);

    public Tensor FinalNorm(Tensor hidden) => _norm.call(hidden);

    public Tensor HeadLogits(Tensor normalised, long start, long count)
    {
        using var scope = NewDisposeScope();
        var weight = ReadRowRange(_headName, start, count);
        return nn.functional.linear(normalised, weight).MoveToOuterDisposeScope();
    }

    /// <summary>Reads one whole tensor, in its stored type, on the CPU.</summary>
    public Tensor ReadStored(string name)
    {
        var file = _folder.GetFile(name);
        var info = file.GetInfo(name);
        var cpu = empty(info.Shape, TorchSafeTensors.ToScalarType(info.DType), CPU);
        try
        {
            ReadInto(file, cpu, file.DataOffset + info.Begin);
            return cpu;
        }
        catch
        {
            cpu.Dispose();
            throw;
        }
    }

    /// <summary>Reads one whole tensor in the compute type on the device.</summary>
    public Tensor ReadTensor(string name)
    {
        var info = _folder.GetInfo(name);
        return ReadRowRange(name, 0, info.Rank == 0 ? 1 : info.Dim(0));
    }

    /// <summary>Reads rows [start, start + count) of a tensor (along its first dimension), in the compute type on the device.</summary>
    public Tensor ReadRowRange(string name, long start, long count)
    {
        var file = _folder.GetFile(name);
        var info = file.GetInfo(name);
        var stored = TorchSafeTensors.ToScalarType(info.DType);
        var shape = info.Shape;
        long rowBytes = info.ByteLength / Math.Max(1, shape.Length == 0 ? 1 : shape[0]);
        var rowsShape = shape.Length == 0 ? shape : [count, .. shape[1..]];
        var cpu = empty(rowsShape, stored, CPU);
        try
        {
            ReadInto(file, cpu, file.DataOffset + info.Begin + start * rowBytes);
            if (stored == ComputeType && Device.type == DeviceType.CPU) return cpu;
            var converted = cpu.to(info.DType.IsFloatingPoint() ? ComputeType : stored, Device);
            cpu.Dispose();
            return converted;
        }
        catch
        {
            cpu.Dispose();
            throw;
        }
    }

    /// <summary>Reads the given rows of a 2-D tensor (sorted ascending), in the compute type on the device.</summary>
    public Tensor ReadRows(string name, IReadOnlyList<long> rows)
    {
        var file = _folder.GetFile(name);
        var info = file.GetInfo(name);
        if (info.Rank != 2) throw new CheckpointFormatException(file.FilePath, "expected a matrix", name);
        var stored = TorchSafeTensors.ToScalarType(info.DType);
        long rowBytes = info.ByteLength / info.Dim(0);
        var cpu = empty([rows.Count, info.Dim(1)], stored, CPU);
        try
        {
            for (int i = 0; i < rows.Count; i++)
            {
                if (rows[i] < 0 || rows[i] >= info.Dim(0))
                    throw new ArgumentOutOfRangeException(nameof(rows), $"Token id {rows[i]} is outside the vocabulary [0, {info.Dim(0)}).");
                using var row = cpu[i];
                ReadInto(file, row, file.DataOffset + info.Begin + rows[i] * rowBytes);
            }

            var converted = cpu.to(ComputeType, Device);
            if (!ReferenceEquals(converted, cpu)) cpu.Dispose();
            return converted;
        }
        catch
        {
            cpu.Dispose();
            throw;
        }
    }

    private void ReadInto(SafeTensorsFile file, Tensor destination, long offset)
    {
        SafeFileHandle handle;
        lock (_gate)
        {
            if (!_handles.TryGetValue(file.FilePath, out handle!))
            {
                handle = File.OpenHandle(file.FilePath, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
                _handles.Add(file.FilePath, handle);
            }
        }

        long total = destination.numel() * destination.ElementSize;
        if (total == 0) return;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var flat = destination.view(-1);
        long chunkElements = (1L << 30) / destination.ElementSize;
        long count = flat.numel();
        for (long first = 0; first < count; first += chunkElements)
        {
            long n = Math.Min(chunkElements, count - first);
            using var part = flat.narrow(0, first, n);
            var span = part.bytes;
            long at = offset + first * destination.ElementSize;
            int done = 0;
            while (done < span.Length)
            {
                int read = RandomAccess.Read(handle, span[done..], at + done);
                if (read <= 0) throw new CheckpointFormatException(file.FilePath, "the file ended inside a tensor");
                done += read;
            }
        }

        ReadSeconds += System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        BytesRead += total;
    }

    public void Dispose()
    {
        _norm?.Dispose();
        foreach (var h in _handles.Values) h.Dispose();
        _handles.Clear();
        _folder.Dispose();
    }
}
