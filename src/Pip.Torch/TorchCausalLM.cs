using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch;

/// <summary>
/// A Hugging Face Llama-layout checkpoint loaded into TorchSharp, with its tokenizer: the model Pip prunes,
/// evaluates and saves.
/// </summary>
/// <remarks>
/// <para>Ownership: this object owns <see cref="Module"/> and disposes it. The folder it was loaded from is only read;
/// <see cref="Save"/> writes a new folder (atomically) and never modifies the source.</para>
/// <para>Thread-safety: not thread-safe; use one instance from one thread at a time.</para>
/// </remarks>
public sealed partial class TorchCausalLM : IWidthPrunableModel, IDisposable
{
    /// <summary>Files besides config and weights that make a model folder usable, copied on save when present.</summary>
    public static readonly IReadOnlyList<string> CompanionFiles =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
        "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
    ];

    private readonly List<int> _originalIndices;

    /// <summary>Wraps a module and its tokenizer.</summary>
    /// <param name="module">The model; owned by this object from now on.</param>
    /// <param name="tokenizer">Its tokenizer, or null (then <see cref="Tokenize"/> throws).</param>
    /// <param name="sourceFolder">The folder it was loaded from (companion files are copied from there on save), or null.</param>
    public TorchCausalLM(LlamaForCausalLM module, HfTokenizer? tokenizer, string? sourceFolder = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        Module = module;
        Tokenizer = tokenizer;
        SourceFolder = sourceFolder;
        _originalIndices = Enumerable.Range(0, module.Layers.Count).ToList();
    }

    /// <summary>The TorchSharp module.</summary>
    public LlamaForCausalLM Module { get; }

    /// <summary>The tokenizer, or null.</summary>
    public HfTokenizer? Tokenizer { get; }

    /// <summary>The folder the model was loaded from, or null.</summary>
    public string? SourceFolder { get; }

    /// <summary>The configuration (its <c>num_hidden_layers</c> follows pruning).</summary>
    public LlamaConfig Config => Module.Config;

    /// <inheritdoc />
    public string Architecture => Config.Family switch
    {
        DecoderFamily.Mistral => "MistralForCausalLM",
        DecoderFamily.Qwen2 => "Qwen2ForCausalLM",
        _ => "LlamaForCausalLM",
    };

    /// <inheritdoc />
    public int LayerCount => Module.Layers.Count;

    /// <inheritdoc />
    public long ParameterCount => Module.CountParameters().Total;

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
    /// <exception cref="CheckpointFormatException">A file of the folder is malformed; the message names it.</exception>
    public static TorchCausalLM Load(string folder, ScalarType? dtype = null, Device? device = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Model folder '{folder}' does not exist.");
        using var checkpoint = CheckpointFolder.Open(folder);
        var config = checkpoint.LoadConfig();
        var type = TorchPrecision.Resolve(dtype, DtypeOf(config), device);
        HfTokenizer? tokenizer = File.Exists(Path.Combine(folder, "tokenizer.json")) ? HfTokenizer.Load(folder) : null;
        var module = new LlamaForCausalLM(config, type, device);
        try
        {
            var weights = TorchSafeTensors.Load(checkpoint, device, type);
            try
            {
                module.LoadWeights(weights);
            }
            finally
            {
                foreach (var w in weights.Values) w.Dispose();
            }
        }
        catch
        {
            module.Dispose();
            throw;
        }

        return new TorchCausalLM(module, tokenizer, Path.GetFullPath(folder));
    }

    /// <summary>The parameter type a config asks for (<c>torch_dtype</c>), float32 when absent.</summary>
    /// <param name="config">The configuration.</param>
    public static ScalarType DtypeOf(LlamaConfig config) => config.TorchDtype switch
    {
        "bfloat16" => ScalarType.BFloat16,
        "float16" => ScalarType.Float16,
        _ => ScalarType.Float32,
    };

    /// <summary>Writes the model as a Hugging Face folder (config, safetensors, companion files), atomically.</summary>
    /// <param name="folder">The destination; refused if it exists and is not empty, unless <paramref name="overwrite"/>.</param>
    /// <param name="dtype">The type to store the weights in, or null for the parameters' type.</param>
    /// <param name="overwrite">Whether to replace an existing folder.</param>
    /// <param name="cancellationToken">Cancels the save; nothing is left half-written.</param>
    public void Save(string folder, ScalarType? dtype = null, bool overwrite = false, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var stored = dtype ?? Module.Dtype;
        var config = Config with { TorchDtype = stored switch { ScalarType.BFloat16 => "bfloat16", ScalarType.Float16 => "float16", _ => "float32" } };
        var extras = SourceFolder is null
            ? []
            : CompanionFiles.Select(f => Path.Combine(SourceFolder, f)).Where(File.Exists).ToArray();
        TorchSafeTensors.Save(folder, config, Module.NamedWeights(), new CheckpointSaveOptions { Overwrite = overwrite, ExtraFiles = extras }, stored, cancellationToken);
    }

    /// <inheritdoc />
    public long GetLayerParameterCount(int layer) => Module.Layers[layer].ParameterCount;

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
        var bad = skipLayers?.Where(l => l < 0 || l >= Module.Layers.Count).Order().ToArray() ?? [];
        if (bad.Length > 0)
            throw new ArgumentOutOfRangeException(nameof(skipLayers), $"Layers {string.Join(", ", bad)} cannot be skipped: the model has {Module.Layers.Count} layers.");
        double nll = 0;
        long tokens = 0;
        using var noGrad = no_grad();
        foreach (var sequence in sequences)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (sequence.Count < 2) continue;
            using var scope = NewDisposeScope();
            using var batch = PaddedBatch.Create([sequence], Module.Device);
            using var rope = Module.ComputeRotary(sequence.Count);
            var hidden = Module.Embed(batch.Ids);
            for (int l = 0; l < Module.Layers.Count; l++)
            {
                if (skipLayers is null || !skipLayers.Contains(l)) hidden = Module.Layers[l].call(hidden, rope);
            }

            // The sequence's mean NLL, weighted by its token count: the result is the mean over all tokens.
            nll += batch.SequenceLosses(Module.LmHead(Module.FinalNorm(hidden))).item<float>() * (double)(sequence.Count - 1);
            tokens += sequence.Count - 1;
        }

        if (tokens == 0) throw new ArgumentException("No sequence has two or more tokens.", nameof(sequences));
        return ValueTask.FromResult(nll / tokens);
    }

    /// <inheritdoc />
    public void RemoveLayers(IReadOnlyCollection<int> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        Module.RemoveLayers(layers);
        foreach (int l in layers.Distinct().OrderDescending()) _originalIndices.RemoveAt(l);
    }

    /// <summary>The TorchSharp module behind a model, or an error naming the metric that needs it.</summary>
    /// <param name="model">The model a metric was given.</param>
    /// <param name="metric">The metric's name.</param>
    internal static LlamaForCausalLM Require(IPrunableModel model, string metric) =>
        model is TorchCausalLM torch
            ? torch.Module
            : throw new NotSupportedException($"Metric '{metric}' needs a {nameof(TorchCausalLM)} (Pip.Torch); got {model.GetType().Name}.");

    /// <inheritdoc />
    public void Dispose() => Module.Dispose();
}
