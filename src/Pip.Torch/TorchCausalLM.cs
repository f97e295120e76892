using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>
/// A Hugging Face checkpoint (Llama layout: Llama, Mistral, Qwen2; or OPT) loaded into TorchSharp, with its
/// tokenizer: the model Pip prunes, evaluates and saves. The folder's <c>config.json</c> <c>model_type</c> chooses
/// the module (<see cref="LlamaForCausalLM"/> or <see cref="OptForCausalLM"/>).
/// </summary>
/// <remarks>
/// <para>Ownership: this object owns <see cref="Model"/> and disposes it. The folder it was loaded from is only read;
/// <see cref="Save"/> writes a new folder (atomically) and never modifies the source.</para>
/// <para>Thread-safety: not thread-safe; use one instance from one thread at a time.</para>
/// </remarks>
public sealed partial class TorchCausalLM : IWidthPrunableModel, ILayerSkipLossModel, IDisposable
{
    /// <summary>Files besides config and weights that make a model folder usable, copied on save when present.</summary>
    public static readonly IReadOnlyList<string> CompanionFiles = CheckpointFolder.CompanionFileNames;

    private readonly List<int> _originalIndices;

    /// <summary>Wraps a module and its tokenizer.</summary>
    /// <param name="module">The model (<see cref="LlamaForCausalLM"/> or <see cref="OptForCausalLM"/>); owned by this object from now on.</param>
    /// <param name="tokenizer">Its tokenizer, or null (then <see cref="Tokenize"/> throws).</param>
    /// <param name="sourceFolder">The folder it was loaded from (companion files are copied from there on save), or null.</param>
    public TorchCausalLM(ICausalLMModule module, HfTokenizer? tokenizer, string? sourceFolder = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        Model = module;
        Tokenizer = tokenizer;
        SourceFolder = sourceFolder;
        _originalIndices = Enumerable.Range(0, module.Layers.Count).ToList();
    }

    /// <summary>The TorchSharp module, of any supported architecture.</summary>
    public ICausalLMModule Model { get; }

    /// <summary>The TorchSharp module of a Llama-layout model.</summary>
    /// <exception cref="InvalidOperationException">The model is not Llama-layout (it is OPT: use <see cref="Model"/>).</exception>
    public LlamaForCausalLM Module => Model as LlamaForCausalLM
        ?? throw new InvalidOperationException($"This model is {Model.Config.Architecture}, not a Llama-layout model; use {nameof(Model)}.");

    /// <summary>The tokenizer, or null.</summary>
    public HfTokenizer? Tokenizer { get; }

    /// <summary>The folder the model was loaded from, or null.</summary>
    public string? SourceFolder { get; }

    /// <summary>The configuration (<see cref="LlamaConfig"/> or <see cref="OptConfig"/>; its layer count and shapes follow pruning).</summary>
    public IModelConfig ModelConfig => Model.Config;

    /// <summary>The configuration of a Llama-layout model (its <c>num_hidden_layers</c> follows pruning).</summary>
    /// <exception cref="InvalidOperationException">The model is not Llama-layout (use <see cref="ModelConfig"/>).</exception>
    public LlamaConfig Config => Module.Config;

    /// <inheritdoc />
    public string Architecture => ModelConfig.Architecture;

    /// <inheritdoc />
    public int LayerCount => Model.Layers.Count;

    /// <inheritdoc />
    public long ParameterCount => Model.CountParameters().Total;

    /// <inheritdoc />
    public IReadOnlyList<int> OriginalLayerIndices => _originalIndices;

    /// <summary>Loads a Hugging Face model folder: <c>config.json</c>, safetensors weights, and <c>tokenizer.json</c> when present.</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="dtype">
    /// The parameter type to compute in, or null for automatic: the checkpoint's own <c>torch_dtype</c> (float32 if
    /// absent) when the device computes it fast, else float32 (see <see cref="TorchPrecision"/>).
    /// </param>
    /// <param name="device">The device, or null for the CPU.</param>
    /// <returns>The loaded model.</returns>
    /// <exception cref="CheckpointFormatException">A file of the folder is malformed, its config asks for sizes its
    /// weights do not have, or a weight holds NaN or ±Inf values; the message names the file.</exception>
    public static TorchCausalLM Load(string folder, ScalarType? dtype = null, Device? device = null) =>
        Load(folder, new TorchLoadOptions { Dtype = dtype, Device = device });

    /// <summary>Loads a Hugging Face model folder: <c>config.json</c>, safetensors weights, and <c>tokenizer.json</c> when present.</summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="options">The type, device and checks of the load.</param>
    /// <param name="cancellationToken">Cancels the load (checked between tensors); nothing stays allocated.</param>
    /// <returns>The loaded model.</returns>
    /// <remarks>
    /// The sizes of <c>config.json</c> are checked against the safetensors headers before anything is allocated
    /// (<see cref="ConfigWeightsCheck"/>); after the weights are read, every floating-point tensor is checked for NaN
    /// and ±Inf (<see cref="Checkpoints.NonFiniteWeights"/>, see <see cref="TorchLoadOptions.AllowNonFiniteWeights"/>).
    /// </remarks>
    /// <exception cref="CheckpointFormatException">A file of the folder is malformed, its config asks for sizes its
    /// weights do not have, or a weight holds NaN or ±Inf values and that is not allowed; the message names the file.</exception>
    /// <exception cref="OperationCanceledException">The load was cancelled.</exception>
    public static TorchCausalLM Load(string folder, TorchLoadOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(options);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");
        var device = options.Device;
        using var checkpoint = CheckpointFolder.Open(folder);
        var config = checkpoint.LoadModelConfig();
        ConfigWeightsCheck.Check(checkpoint, config);
        var type = TorchPrecision.Resolve(options.Dtype, DtypeOf(config), device, config);
        HfTokenizer? tokenizer = File.Exists(Path.Combine(folder, "tokenizer.json")) ? HfTokenizer.Load(folder) : null;
        cancellationToken.ThrowIfCancellationRequested();
        ICausalLMModule module = config switch
        {
            OptConfig opt => new OptForCausalLM(opt, type, device),
            LlamaConfig llama => new LlamaForCausalLM(llama, type, device),
            _ => throw new NotSupportedException($"Model folder '{folder}': the architecture {config.Architecture} has no TorchSharp module."),
        };
        IReadOnlyList<NonFiniteTensor> nonFinite;
        try
        {
            var weights = LoadWeightsInPlace(module, checkpoint, cancellationToken);
            nonFinite = NonFiniteWeights.Find(checkpoint, weights, cancellationToken);
            if (nonFinite.Count > 0 && !options.AllowNonFiniteWeights)
                throw NonFiniteWeights.Error(nonFinite);
            foreach (var tensor in nonFinite)
                options.Logger?.LogWarning("Loading non-finite weights as asked: {Tensor}.", tensor);
        }
        catch
        {
            module.Dispose();
            throw;
        }

        return new TorchCausalLM(module, tokenizer, Path.GetFullPath(folder)) { NonFiniteTensors = nonFinite };
    }

    /// <summary>
    /// The weight tensors that held NaN or ±Inf values when the model was loaded (only possible with
    /// <see cref="TorchLoadOptions.AllowNonFiniteWeights"/>); empty otherwise.
    /// </summary>
    public IReadOnlyList<NonFiniteTensor> NonFiniteTensors { get; private init; } = [];

    /// <summary>
    /// Fills a module's parameters straight from a checkpoint's files: names and shapes are matched first
    /// (<see cref="ICausalLMModule.WeightTargets"/>, strict), then each tensor is read into its parameter's storage
    /// (<see cref="TorchSafeTensors.LoadInto(CheckpointFolder, IReadOnlyDictionary{string, Tensor}, CancellationToken)"/>),
    /// so loading costs the parameters' memory plus one small staging buffer, not a second copy of the weights.
    /// Cancellation is checked between tensors.
    /// </summary>
    /// <returns>The filled parameters by checkpoint tensor name.</returns>
    private static IReadOnlyDictionary<string, Tensor> LoadWeightsInPlace(ICausalLMModule module, CheckpointFolder checkpoint, CancellationToken cancellationToken)
    {
        var shapes = checkpoint.TensorNames.ToDictionary(n => n, n => checkpoint.GetInfo(n).Shape, StringComparer.Ordinal);
        var targets = module.WeightTargets(shapes);
        TorchSafeTensors.LoadInto(checkpoint, targets, cancellationToken);
        return targets;
    }

    /// <summary>The parameter type a config asks for (<c>torch_dtype</c>), float32 when absent.</summary>
    /// <param name="config">The configuration.</param>
    public static ScalarType DtypeOf(IModelConfig config) => (config ?? throw new ArgumentNullException(nameof(config))).TorchDtype switch
    {
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>
    /// Writes the model as a Hugging Face folder (config, safetensors, companion files), atomically, every layer at
    /// its own size (the <see cref="CheckpointLayout.PerLayer"/> layout: layers that differ are listed in
    /// <c>per_layer_config</c>, which Pip reads and transformers' Llama and OPT classes do not). Use
    /// <see cref="SaveAs"/> to choose the layout.
    /// </summary>
    /// <param name="folder">The destination; refused if it exists and is not empty, unless <paramref name="overwrite"/>.</param>
    /// <param name="dtype">The type to store the weights in, or null for the parameters' type.</param>
    /// <param name="overwrite">Whether to replace an existing folder.</param>
    /// <param name="cancellationToken">Cancels the save; nothing is left half-written.</param>
    public void Save(string folder, ScalarType? dtype = null, bool overwrite = false, CancellationToken cancellationToken = default) =>
        SaveAs(folder, CheckpointLayout.PerLayer, dtype, overwrite, cancellationToken);

    /// <summary>Writes the model as a Hugging Face folder in a <see cref="CheckpointLayout"/>, atomically.</summary>
    /// <param name="folder">The destination; refused if it exists and is not empty, unless <paramref name="overwrite"/>.</param>
    /// <param name="layout">How layers of different widths are written (see <see cref="LaidOutCheckpoint"/>).</param>
    /// <param name="dtype">The type to store the weights in, or null for the parameters' type.</param>
    /// <param name="overwrite">Whether to replace an existing folder.</param>
    /// <param name="cancellationToken">Cancels the save; nothing is left half-written.</param>
    /// <returns>The layout written and the parameters stored (padding included).</returns>
    /// <exception cref="NotSupportedException">The compatible layout was asked for and the model has no compatible form.</exception>
    public SavedCheckpoint SaveAs(string folder, CheckpointLayout layout, ScalarType? dtype, bool overwrite, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var stored = dtype ?? Model.Dtype;
        using var laidOut = LaidOutCheckpoint.Create(Model, layout);
        var config = laidOut.Config.WithTorchDtype(stored switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" });
        var extras = SourceFolder is null
            ? []
            : CompanionFiles.Select(f => Path.Combine(SourceFolder, f)).Where(File.Exists).ToArray();
        TorchSafeTensors.Save(folder, config, laidOut.Weights, new CheckpointSaveOptions { Overwrite = overwrite, ExtraFiles = extras }, stored, cancellationToken);
        return new SavedCheckpoint(laidOut.Layout, laidOut.ParameterCount, laidOut.PaddingParameterCount);
    }

    /// <inheritdoc />
    public long GetLayerParameterCount(int layer) => Model.Layers[layer].parameters().Sum(p => p.numel());

    /// <inheritdoc />
    public IReadOnlyList<int> Tokenize(string text)
    {
        if (Tokenizer is null) throw new InvalidOperationException("This model was loaded without a tokenizer.json; it cannot tokenize text.");
        return Tokenizer.Encode(text);
    }

    /// <inheritdoc />
    public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var module = Model;
        var bad = skipLayers?.Where(l => l < 0 || l >= module.Layers.Count).Order().ToArray() ?? [];
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(skipLayers), $"Layers {string.Join(", ", bad)} cannot be skipped: the model has {module.Layers.Count} layers.");
        double nll = 0;
        long tokens = 0;
        using var noGrad = no_grad();
        foreach (var sequence in sequences)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (sequence.Count < 2) continue;
            using var scope = NewDisposeScope();
            using var batch = PaddedBatch.Create([sequence], module.Device);
            using var context = module.CreateLayerContext(sequence.Count);
            var hidden = module.Embed(batch.Ids);
            for (int l = 0; l < module.Layers.Count; l++)
            {
                if (skipLayers is null || !skipLayers.Contains(l)) hidden = module.ForwardLayer(l, hidden, context);
            }

            // The sequence's mean NLL, weighted by its token count: the result is the mean over all tokens.
            nll += batch.SequenceLosses(module.LmHead(module.FinalNorm(hidden))).item<float>() * (double)(sequence.Count - 1);
            tokens += sequence.Count - 1;
        }

        if (tokens == 0) throw new ArgumentException("No sequence has two or more tokens.", nameof(sequences));
        return ValueTask.FromResult(nll / tokens);
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<double>> ComputeLayerSkipLossesAsync(IReadOnlyList<IReadOnlyList<int>> sequences, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        var usable = sequences.Where(s => s.Count >= 2).ToArray();
        if (usable.Length == 0) throw new ArgumentException("No sequence has two or more tokens.", nameof(sequences));
        var losses = Streaming.LayerEngine.For(this).SkipEachLayer(usable, null, cancellationToken);
        return ValueTask.FromResult<IReadOnlyList<double>>([losses.Dense, .. losses.Skipped]);
    }

    /// <inheritdoc />
    public void RemoveLayers(IReadOnlyCollection<int> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        Model.RemoveLayers(layers);
        foreach (int l in layers.Distinct().OrderDescending()) _originalIndices.RemoveAt(l);
    }

    /// <summary>The TorchSharp module behind a model, or an error naming the metric that needs it.</summary>
    /// <param name="model">The model a metric was given.</param>
    /// <param name="metric">The metric's name.</param>
    internal static ICausalLMModule Require(IPrunableModel model, string metric) =>
        model is TorchCausalLM torch
            ? torch.Model
            : throw new NotSupportedException($"Metric '{metric}' needs a {nameof(TorchCausalLM)} (Pip.Torch); got {model.GetType().Name}.");

    /// <inheritdoc />
    public void Dispose() => Model.Dispose();
}

/// <summary>What <see cref="TorchCausalLM.SaveAs"/> wrote.</summary>
/// <param name="Layout">The layout written: <see cref="CheckpointLayout.PerLayer"/> or <see cref="CheckpointLayout.Compatible"/>.</param>
/// <param name="ParameterCount">The parameters the checkpoint stores, padding included.</param>
/// <param name="PaddingParameterCount">How many of them are zeros added by padding.</param>
public sealed record SavedCheckpoint(CheckpointLayout Layout, long ParameterCount, long PaddingParameterCount);
