using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch.Checkpoints;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Streaming;

/// <summary>Options of a <see cref="StreamedCausalLM"/>.</summary>
public sealed class StreamingOptions
{
    /// <summary>The type to compute in; null for automatic (the checkpoint's type where the device runs it fast, else float32; see <see cref="TorchPrecision"/>).</summary>
    public ScalarType? ComputeType { get; set; }

    /// <summary>The device (CPU or CUDA); null for the CPU.</summary>
    public Device? Device { get; set; }

    /// <summary>The largest piece of the output projection read and multiplied at once, in bytes of the compute type (default 256 MiB).</summary>
    public long HeadChunkBytes { get; set; } = 256L << 20;

    /// <summary>
    /// Above this many bytes of layer-boundary hidden states (layers × tokens × hidden × type size), a gradient pass
    /// keeps them in a temporary file instead of memory, so that memory stays flat in the layer count (default 256 MiB).
    /// </summary>
    public long SpillThresholdBytes { get; set; } = 256L << 20;

    /// <summary>The folder of spill files (deleted when the pass ends); null for the system's temporary folder.</summary>
    public string? SpillDirectory { get; set; }
}

/// <summary>
/// A Llama-layout checkpoint (Llama, Mistral, Qwen2) pruned and scored without ever being loaded whole: decoder layers
/// are read from the safetensors files when a pass needs them and freed after (see <see cref="LayerEngine"/>). After
/// <see cref="RemoveLayers"/> the model is "the source checkpoint minus these layers": nothing is written until
/// <see cref="Save"/>, which copies the kept tensors tensor by tensor.
/// </summary>
/// <remarks>
/// <para>Memory: only the final norm stays resident; a pass holds one layer's weights (and, in a gradient pass, its
/// gradients), the layer-boundary hidden states of the pass's sequences, the embedding rows of their tokens and one
/// chunk of the output projection.</para>
/// <para>Ownership: this object owns the open checkpoint files and closes them on <see cref="Dispose"/>; the source
/// folder is only read. The files must not change while it is open.</para>
/// <para>Thread-safety: not thread-safe; one pass at a time.</para>
/// </remarks>
public sealed class StreamedCausalLM : IWidthPrunableModel, ILayerSkipLossModel, IDisposable
{
    private readonly CheckpointLayerStack _stack;
    private readonly List<int> _kept;
    private readonly Dictionary<int, List<int>> _keptHeads = [];
    private readonly Dictionary<int, List<int>> _keptChannels = [];

    private StreamedCausalLM(string folder, LlamaConfig config, CheckpointLayerStack stack, HfTokenizer? tokenizer)
    {
        SourceFolder = folder;
        SourceConfig = config;
        _stack = stack;
        Tokenizer = tokenizer;
        _kept = Enumerable.Range(0, config.NumHiddenLayers).ToList();
        Engine = new LayerEngine(stack);
    }

    /// <summary>The layer source (read statistics for benchmarks).</summary>
    internal CheckpointLayerStack Stack => _stack;

    /// <summary>The folder streamed from.</summary>
    public string SourceFolder { get; }

    /// <summary>The configuration of the checkpoint as stored (all layers).</summary>
    public LlamaConfig SourceConfig { get; }

    /// <summary>The configuration of the model as it is now (removed layers left out).</summary>
    public LlamaConfig Config =>
        (SourceConfig with { NumHiddenLayers = _kept.Count, LayerShapes = null }).WithLayerShapes(_kept.Select(SourceConfig.ShapeOf).ToArray());

    /// <summary>The tokenizer, or null when the folder has no <c>tokenizer.json</c>.</summary>
    public HfTokenizer? Tokenizer { get; }

    /// <summary>The type computations run in.</summary>
    public ScalarType ComputeType => _stack.ComputeType;

    /// <summary>The layer engine over this model (<see cref="LayerEngine.For"/> returns it).</summary>
    public LayerEngine Engine { get; }

    /// <inheritdoc />
    public string Architecture => SourceConfig.Architecture;

    /// <inheritdoc />
    public int LayerCount => _kept.Count;

    /// <inheritdoc />
    public long ParameterCount
    {
        get
        {
            var folder = _stack.Folder;
            var kept = new HashSet<int>(_kept);
            long total = 0;
            foreach (var name in folder.TensorNames)
            {
                if (SourceConfig.TieWordEmbeddings && name == LlamaForCausalLM.LmHeadWeightName) continue;
                if (TryLayerOf(name, out int layer, out _) && !kept.Contains(layer)) continue;
                total += folder.GetInfo(name).ElementCount;
            }

            for (int l = 0; l < _kept.Count; l++) total -= RemovedUnitParameters(l);
            return total;
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<int> OriginalLayerIndices => _kept;

    /// <summary>Opens a model folder for streaming: reads <c>config.json</c>, the safetensors headers and <c>tokenizer.json</c>, no weights but the final norm.</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <returns>The model; dispose it.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The folder has no safetensors weights (e.g. only a pickled checkpoint, which cannot be streamed) or they are malformed.</exception>
    /// <exception cref="NotSupportedException">The architecture is not Llama-layout (OPT is not streamed; load it in memory).</exception>
    public static StreamedCausalLM Open(string folder, StreamingOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");
        options ??= new StreamingOptions();
        var full = Path.GetFullPath(folder);
        IModelConfig config;
        using (var probe = CheckpointFolder.Open(full))
        {
            config = probe.LoadModelConfig();
            // The config's sizes are bounded by the weights present before anything is allocated, as for a resident load.
            ConfigWeightsCheck.Check(probe, config);
        }

        if (config is not LlamaConfig llama)
            throw new NotSupportedException($"Model folder '{folder}' is {config.Architecture}; streaming supports Llama-layout checkpoints (Llama, Mistral, Qwen2). Load it in memory instead.");
        var type = TorchPrecision.Resolve(options.ComputeType, TorchCausalLM.DtypeOf(llama), options.Device, llama);
        long elementSize = type == ScalarType.Float32 ? 4 : 2;
        long rows = Math.Max(1, options.HeadChunkBytes / (llama.HiddenSize * elementSize));
        var stack = new CheckpointLayerStack(full, llama, type, options.Device, rows, options.SpillThresholdBytes, options.SpillDirectory);
        try
        {
            var tokenizer = File.Exists(Path.Combine(full, "tokenizer.json")) ? HfTokenizer.Load(full) : null;
            return new StreamedCausalLM(full, llama, stack, tokenizer);
        }
        catch
        {
            stack.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public long GetLayerParameterCount(int layer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, LayerCount);
        return _stack.LayerParameterCount(layer) - RemovedUnitParameters(layer);
    }

    /// <inheritdoc />
    public IReadOnlyList<int> Tokenize(string text)
    {
        if (Tokenizer is null) throw new InvalidOperationException("This model was opened without a tokenizer.json; it cannot tokenize text.");
        return Tokenizer.Encode(text);
    }

    /// <inheritdoc />
    public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var usable = sequences.Where(s => s.Count >= 2).ToArray();
        if (usable.Length == 0) throw new ArgumentException("No sequence has two or more tokens.", nameof(sequences));
        var losses = Engine.SequenceLosses(usable, skipLayers, null, cancellationToken);
        double nll = 0, tokens = 0;
        for (int i = 0; i < usable.Length; i++)
        {
            nll += losses[i] * (usable[i].Count - 1);
            tokens += usable[i].Count - 1;
        }

        return ValueTask.FromResult(nll / tokens);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<double>> ComputeLayerSkipLossesAsync(IReadOnlyList<IReadOnlyList<int>> sequences, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var usable = sequences.Where(s => s.Count >= 2).ToArray();
        if (usable.Length == 0) throw new ArgumentException("No sequence has two or more tokens.", nameof(sequences));
        var losses = LayerEngine.For(this).SkipEachLayer(usable, null, cancellationToken);
        return ValueTask.FromResult<IReadOnlyList<double>>([losses.Dense, .. losses.Skipped]);
    }

    /// <inheritdoc />
    public void RemoveLayers(IReadOnlyCollection<int> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        var bad = layers.Where(i => i < 0 || i >= _kept.Count).Distinct().Order().ToArray();
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(layers), $"Layer indices {string.Join(", ", bad)} are out of range: the model has {_kept.Count} layers.");
        foreach (int l in layers.Distinct().OrderDescending()) _kept.RemoveAt(l);
        _stack.OriginalLayerIndices = _kept.ToArray();
    }

    /// <inheritdoc />
    public int GetUnitCount(int layer, WidthUnitKind kind)
    {
        var shape = ShapeOfCurrent(layer);
        if (KeptUnits(kind).TryGetValue(_kept[layer], out var kept)) return kept.Count;
        return kind == WidthUnitKind.Heads ? shape.NumKeyValueHeads : shape.IntermediateSize;
    }

    /// <inheritdoc />
    /// <remarks>The same count as a <see cref="TorchCausalLM"/> of this checkpoint: rows of q/k/v (with their biases) and o_proj columns per key/value group; gate/up rows (with their biases) and a down_proj column per channel.</remarks>
    public long GetUnitParameterCount(int layer, WidthUnitKind kind)
    {
        var shape = ShapeOfCurrent(layer);
        long hidden = SourceConfig.HiddenSize, d = SourceConfig.HeadDim;
        if (kind == WidthUnitKind.Heads)
        {
            long queries = (long)shape.NumAttentionHeads / shape.NumKeyValueHeads * d;
            bool qkvBias = LlamaAttention.Biases(SourceConfig).QkvBias;
            return (queries + 2 * d) * (hidden + (qkvBias ? 1 : 0)) + queries * hidden;
        }

        bool mlpBias = SourceConfig.Family == DecoderFamily.Llama && SourceConfig.MlpBias;
        return 2 * (hidden + (mlpBias ? 1 : 0)) + hidden;
    }

    /// <inheritdoc />
    public string? GetBiasCompensationObstacle(WidthUnitKind kind) =>
        "a streamed model is never changed in place, so there is no bias to add the compensation to; load the model in memory for bias compensation.";

    /// <inheritdoc />
    /// <remarks>
    /// Nothing is changed in the source: the model becomes "the source minus these key/value groups and channels",
    /// written by <see cref="Save"/> (<see cref="StreamedCheckpointWriter.SavePruned"/>, per-layer widths). After a
    /// width removal the layers can no longer be run (the engine refuses passes): save the model and open the copy.
    /// </remarks>
    /// <exception cref="ArgumentException">A layer or unit is out of range, or no unit of a kind would stay in a layer.</exception>
    /// <exception cref="NotSupportedException">The plan carries bias compensation (input means).</exception>
    public void RemoveUnits(WidthRemovalPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.HeadInputMeans is not null || plan.ChannelInputMeans is not null)
            throw new NotSupportedException("Bias compensation cannot be applied to a streamed model: " + GetBiasCompensationObstacle(WidthUnitKind.Heads));
        var kinds = new[] { (plan.Heads, WidthUnitKind.Heads), (plan.Channels, WidthUnitKind.Channels) };
        foreach (var (units, kind) in kinds)
        {
            foreach (var (layer, removed) in units)
            {
                if (layer < 0 || layer >= LayerCount)
                    throw new ArgumentException($"Layer {layer} does not exist: the model has {LayerCount} layers.", nameof(plan));
                int count = GetUnitCount(layer, kind);
                var bad = removed.Where(u => u < 0 || u >= count).Order().ToArray();
                if (bad.Length > 0)
                    throw new ArgumentException($"Layer {layer}: {kind} {string.Join(", ", bad)} do not exist (the layer has {count}).", nameof(plan));
                if (removed.Distinct().Count() >= count)
                    throw new ArgumentException($"Layer {layer}: all {count} {kind} would be removed; at least one must stay.", nameof(plan));
            }
        }

        foreach (var (units, kind) in kinds)
        {
            foreach (var (layer, removed) in units)
            {
                if (removed.Count == 0) continue;
                int original = _kept[layer];
                var all = KeptUnits(kind);
                if (!all.TryGetValue(original, out var kept))
                    all[original] = kept = Enumerable.Range(0, GetUnitCount(layer, kind)).ToList();
                foreach (int u in removed.Distinct().OrderDescending()) kept.RemoveAt(u);
            }
        }

        if (_keptHeads.Count + _keptChannels.Count > 0)
            _stack.Obstacle = "width units were removed from this streamed model; its layers are not narrowed when read, so it cannot be run. Save it and open the copy.";
    }

    private Dictionary<int, List<int>> KeptUnits(WidthUnitKind kind) => kind == WidthUnitKind.Heads ? _keptHeads : _keptChannels;

    /// <summary>Parameters of the removed width units of a current layer.</summary>
    private long RemovedUnitParameters(int layer)
    {
        var shape = SourceConfig.ShapeOf(_kept[layer]);
        long removed = 0;
        if (_keptHeads.TryGetValue(_kept[layer], out var heads))
            removed += (shape.NumKeyValueHeads - heads.Count) * GetUnitParameterCount(layer, WidthUnitKind.Heads);
        if (_keptChannels.TryGetValue(_kept[layer], out var channels))
            removed += (shape.IntermediateSize - channels.Count) * GetUnitParameterCount(layer, WidthUnitKind.Channels);
        return removed;
    }

    private LayerShape ShapeOfCurrent(int layer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, LayerCount);
        return SourceConfig.ShapeOf(_kept[layer]);
    }

    /// <summary>
    /// Writes the model as it is now (the source checkpoint minus the removed layers, the kept ones renumbered, and minus
    /// the key/value groups and channels <see cref="RemoveUnits"/> removed) as a Hugging Face folder, atomically, tensor
    /// by tensor from the source files: at most one tensor is in memory. A width-pruned model keeps the checkpoint's types.
    /// </summary>
    /// <param name="folder">The destination; refused if it exists and is not empty, unless <see cref="CheckpointSaveOptions.Overwrite"/>.</param>
    /// <param name="dtype">The type to store floating-point weights in; null for the checkpoint's types.</param>
    /// <param name="options">Overwrite, sharding and files to add besides the source's tokenizer and companion files
    /// (<see cref="CheckpointSaveOptions.ExtraFiles"/>, <see cref="CheckpointSaveOptions.WriteExtraFiles"/>); null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the save; nothing is left half-written.</param>
    public void Save(string folder, ScalarType? dtype = null, CheckpointSaveOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var source = _stack.Folder;
        if (_keptHeads.Count + _keptChannels.Count > 0)
        {
            if (dtype is { } wanted && source.TensorNames.Any(n => source.GetInfo(n).DType.IsFloatingPoint() && TorchSafeTensors.ToScalarType(source.GetInfo(n).DType) != wanted))
                throw new NotSupportedException($"A width-pruned streamed model is written in the checkpoint's own types; it cannot be converted to {wanted} on the way.");
            var widths = _keptHeads.Keys.Union(_keptChannels.Keys).ToDictionary(l => l,
                l => new LayerWidthKeep(_keptHeads.TryGetValue(l, out var h) ? h : null, _keptChannels.TryGetValue(l, out var c) ? c : null));
            var removedLayers = Enumerable.Range(0, SourceConfig.NumHiddenLayers).Except(_kept).ToArray();
            StreamedCheckpointWriter.SavePruned(source, folder, removedLayers, widths, options, cancellationToken);
            return;
        }

        var kept = new HashSet<int>(_kept);
        var removed = Enumerable.Range(0, SourceConfig.NumHiddenLayers).Where(l => !kept.Contains(l)).ToArray();
        // The Core writer's plan decides which tensors go where (and their new names); only the conversion is ours.
        var plan = StreamedCheckpointWriter.PlanPruned(source, removed);
        var sources = new List<SafeTensorSource>(plan.Tensors.Count);
        foreach (var tensor in plan.Tensors)
        {
            if (tensor.Slice is not null)
                throw new InvalidOperationException($"Tensor '{tensor.SourceName}' would be sliced; a streamed model removes whole layers only.");
            var info = source.GetInfo(tensor.SourceName);
            var storedType = TorchSafeTensors.ToScalarType(info.DType);
            var type = dtype is { } d && info.DType.IsFloatingPoint() ? d : storedType;
            var tensorName = tensor.SourceName;
            sources.Add(new SafeTensorSource(tensor.TargetName, TorchSafeTensors.ToSafeTensorDType(type), info.Shape, (stream, ct) =>
            {
                using var scope = NewDisposeScope();
                var t = _stack.ReadStored(tensorName);
                if (t.dtype != type) t = t.to_type(type);
                using var flat = t.reshape(-1);
                long chunk = Math.Max(1, (1L << 30) / flat.ElementSize);
                for (long start = 0; start < flat.numel(); start += chunk)
                {
                    ct.ThrowIfCancellationRequested();
                    using var part = flat.narrow(0, start, Math.Min(chunk, flat.numel() - start));
                    stream.Write(part.bytes);
                }
            }));
        }

        var savedType = dtype ?? TorchCausalLM.DtypeOf(SourceConfig);
        var config = plan.Config.WithTorchDtype(savedType switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" });
        CheckpointWriter.Save(folder, config, sources, StreamedCheckpointWriter.WithCompanionFiles(source, options), cancellationToken);
    }

    private static bool TryLayerOf(string name, out int layer, out string rest)
    {
        const string Prefix = "model.layers.";
        layer = -1;
        rest = "";
        if (!name.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        int dot = name.IndexOf('.', Prefix.Length);
        if (dot < 0 || !int.TryParse(name.AsSpan(Prefix.Length, dot - Prefix.Length), out layer)) return false;
        rest = name[(dot + 1)..];
        return true;
    }

    /// <inheritdoc />
    public void Dispose() => _stack.Dispose();
}
