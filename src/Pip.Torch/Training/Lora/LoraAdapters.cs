using System.Text.Json;
using System.Text.Json.Nodes;
using Pip.Checkpoints;
using Pip.Torch.Checkpoints;
using Pip.Torch.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Training.Lora;

/// <summary>
/// The LoRA adapters attached to one <see cref="LlamaForCausalLM"/> (see <see cref="LoraAdapter"/> for how one is
/// attached). While attached, every base parameter is frozen (<c>requires_grad</c> false), so
/// <see cref="CausalLMTrainer"/> trains only A and B; <see cref="Merge"/> folds them into the base weights and
/// <see cref="Remove"/> drops them, both restoring the base parameters' <c>requires_grad</c>.
/// </summary>
/// <remarks>
/// <para>The model works with pruned and heterogeneous models: each adapter takes its shape from its base linear's
/// weight. Attach adapters after pruning and after moving the model to its device (moving does not move them).</para>
/// <para>While attached, <see cref="LlamaForCausalLM.NamedWeights"/> and the state dict hold the adapter parameters
/// too (names ending in <c>.lora_A.weight</c> / <c>.lora_B.weight</c>): merge or remove them before saving the model
/// with <see cref="TorchCausalLM.Save"/>. <see cref="SaveAdapters"/> writes the adapters alone, in PEFT's format.</para>
/// <para>Not thread-safe. Disposing the set removes (does not merge) adapters still attached.</para>
/// </remarks>
public sealed class LoraAdapters : IDisposable
{
    /// <summary>The file name of the adapter weights in PEFT's format: <c>adapter_model.safetensors</c>.</summary>
    public const string AdapterWeightsFile = "adapter_model.safetensors";

    /// <summary>The file name of the adapter configuration in PEFT's format: <c>adapter_config.json</c>.</summary>
    public const string AdapterConfigFile = "adapter_config.json";

    /// <summary>The prefix PEFT gives to the model's parameter names in its adapter files: <c>base_model.model.</c>.</summary>
    public const string PeftKeyPrefix = "base_model.model.";

    private readonly List<LoraAdapter> _adapters;
    private readonly List<(Parameter Parameter, bool RequiresGrad)> _frozen;
    private readonly LoraOptions _options;

    private LoraAdapters(LlamaForCausalLM model, LoraOptions options, List<LoraAdapter> adapters, List<(Parameter, bool)> frozen)
    {
        Model = model;
        _options = options;
        _adapters = adapters;
        _frozen = frozen;
    }

    /// <summary>The model the adapters are attached to.</summary>
    public LlamaForCausalLM Model { get; }

    /// <summary>The adapters, in the model's module order.</summary>
    public IReadOnlyList<LoraAdapter> Adapters => _adapters;

    /// <summary>Whether the adapters are attached (not yet merged, removed or disposed).</summary>
    public bool IsAttached { get; private set; } = true;

    /// <summary>The rank r.</summary>
    public int Rank => _options.Rank;

    /// <summary>α.</summary>
    public double Alpha => _options.Alpha;

    /// <summary>The number of adapter (trainable) parameters.</summary>
    public long ParameterCount => _adapters.Sum(a => a.ParameterCount);

    /// <summary>
    /// Attaches adapters to the linear modules of <paramref name="model"/> named in <see cref="LoraOptions.TargetModules"/>
    /// (in the layers of <see cref="LoraOptions.Layers"/>), and freezes every base parameter. A is drawn
    /// Kaiming-uniform from a generator seeded with <see cref="LoraOptions.Seed"/> (in module order), B is zero:
    /// the model's output is unchanged until B is trained.
    /// </summary>
    /// <param name="model">The model (possibly pruned, heterogeneous).</param>
    /// <param name="options">The settings; validated (only the adapter settings are used here).</param>
    /// <returns>The attached adapters; merge, remove or dispose them.</returns>
    /// <exception cref="System.ComponentModel.DataAnnotations.ValidationException">The options are invalid.</exception>
    /// <exception cref="InvalidOperationException">The model already has LoRA adapters.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A layer of <see cref="LoraOptions.Layers"/> does not exist.</exception>
    /// <exception cref="ArgumentException">A target module matches no linear of the model (e.g. <c>lm_head</c> with tied embeddings).</exception>
    public static LoraAdapters Attach(LlamaForCausalLM model, LoraOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var modules = model.named_modules().ToList();
        if (modules.Any(m => m.name.EndsWith("." + LoraAdapter.AName, StringComparison.Ordinal)))
            throw new InvalidOperationException("The model already has LoRA adapters; merge or remove them before attaching new ones.");
        var layerCount = model.Layers.Count;
        HashSet<int>? layers = null;
        if (options.Layers is not null)
        {
            var bad = options.Layers.Where(l => l >= layerCount).Distinct().Order().ToArray();
            if (bad.Length > 0)
                throw new ArgumentOutOfRangeException(nameof(options), $"LoraOptions.Layers: layers {string.Join(", ", bad)} do not exist; the model has {layerCount} layers.");
            layers = [.. options.Layers];
        }

        var targets = options.TargetModules.ToHashSet(StringComparer.Ordinal);
        var chosen = new List<(string Name, Linear Linear)>();
        foreach (var (name, module) in modules)
        {
            if (module is not Linear linear) continue;
            if (!targets.Contains(LastSegment(name))) continue;
            if (layers is not null && LayerOf(name) is { } layer && !layers.Contains(layer)) continue;
            chosen.Add((name, linear));
        }

        var matched = chosen.Select(c => LastSegment(c.Name)).ToHashSet(StringComparer.Ordinal);
        var missing = targets.Where(t => !matched.Contains(t)).Order(StringComparer.Ordinal).ToArray();
        if (missing.Length > 0)
        {
            var hint = missing.Contains("lm_head") && model.LmHeadLinear is null ? " (lm_head does not exist: the embeddings are tied)" : "";
            throw new ArgumentException($"LoraOptions.TargetModules: {string.Join(", ", missing)} match(es) no linear layer of the model{hint}.", nameof(options));
        }

        var frozen = new List<(Parameter, bool)>();
        foreach (var p in model.parameters())
        {
            frozen.Add((p, p.requires_grad));
            p.requires_grad = false;
        }

        var adapters = new List<LoraAdapter>(chosen.Count);
        try
        {
            using var generator = new Generator(unchecked((ulong)options.Seed), CPU);
            foreach (var (name, linear) in chosen)
                adapters.Add(new LoraAdapter(name, linear, options.Rank, options.Alpha, options.Dropout, generator));
        }
        catch
        {
            foreach (var a in adapters) a.Detach();
            foreach (var (p, grad) in frozen) p.requires_grad = grad;
            throw;
        }

        var copy = new LoraOptions
        {
            Rank = options.Rank,
            Alpha = options.Alpha,
            Dropout = options.Dropout,
            TargetModules = [.. options.TargetModules],
            Layers = options.Layers is null ? null : [.. options.Layers],
            Seed = options.Seed,
        };
        return new LoraAdapters(model, copy, adapters, frozen);
    }

    private static string LastSegment(string name) => name[(name.LastIndexOf('.') + 1)..];

    /// <summary>The decoder layer index of a module name <c>model.layers.N.…</c>, or null.</summary>
    private static int? LayerOf(string name)
    {
        const string Prefix = "model.layers.";
        if (!name.StartsWith(Prefix, StringComparison.Ordinal)) return null;
        var end = name.IndexOf('.', Prefix.Length);
        return end > 0 && int.TryParse(name.AsSpan(Prefix.Length, end - Prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var layer) ? layer : null;
    }

    /// <summary>
    /// The adapter parameters under the model's names (<c>….q_proj.lora_A.weight</c>, <c>….q_proj.lora_B.weight</c>),
    /// A then B per adapter. The tensors are the live parameters: do not dispose them.
    /// </summary>
    /// <returns>Name → parameter.</returns>
    /// <exception cref="InvalidOperationException">The adapters are no longer attached.</exception>
    public IReadOnlyList<KeyValuePair<string, Tensor>> NamedWeights()
    {
        EnsureAttached();
        var result = new List<KeyValuePair<string, Tensor>>(2 * _adapters.Count);
        foreach (var a in _adapters)
        {
            result.Add(new($"{a.Name}.{LoraAdapter.AName}.weight", a.A.weight));
            result.Add(new($"{a.Name}.{LoraAdapter.BName}.weight", a.B.weight));
        }
        return result;
    }

    /// <summary>
    /// Merges every adapter into its base weight (W ← W + (α/r)·B·A, in the base weight's type), removes the
    /// adapters and restores the base parameters' <c>requires_grad</c>. The model is then a plain model again,
    /// computing what the adapted one computed (in evaluation mode), and can be saved with <see cref="TorchCausalLM.Save"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The adapters are no longer attached.</exception>
    public void Merge()
    {
        EnsureAttached();
        foreach (var a in _adapters) a.Merge();
        Restore();
    }

    /// <summary>Removes every adapter without merging (the base weights are as before) and restores <c>requires_grad</c>.</summary>
    /// <exception cref="InvalidOperationException">The adapters are no longer attached.</exception>
    public void Remove()
    {
        EnsureAttached();
        foreach (var a in _adapters) a.Detach();
        Restore();
    }

    /// <summary>
    /// Writes the adapters in PEFT's format: <c>adapter_model.safetensors</c> (keys <c>base_model.model.{name}.lora_A.weight</c>
    /// and <c>….lora_B.weight</c>) and <c>adapter_config.json</c> (<c>peft_type</c> LORA, r, lora_alpha, lora_dropout,
    /// target_modules, task_type CAUSAL_LM), atomically: a temporary folder moved into place.
    /// </summary>
    /// <param name="folder">The destination; refused if it exists and is not empty, unless <paramref name="overwrite"/>.</param>
    /// <param name="baseModelNameOrPath">The base model to record (<c>base_model_name_or_path</c>), or null.</param>
    /// <param name="dtype">The type to store A and B in, or null for float32.</param>
    /// <param name="overwrite">Whether to replace an existing folder.</param>
    /// <exception cref="InvalidOperationException">The adapters are no longer attached.</exception>
    /// <exception cref="IOException">The folder exists and is not empty, and <paramref name="overwrite"/> is false.</exception>
    public void SaveAdapters(string folder, string? baseModelNameOrPath = null, ScalarType? dtype = null, bool overwrite = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        EnsureAttached();
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (File.Exists(full)) throw new IOException($"Adapter folder '{full}' is a file.");
        if (!overwrite && Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw new IOException($"Adapter folder '{full}' exists and is not empty; pass overwrite to replace it.");
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            TorchSafeTensors.SaveFile(Path.Combine(temp, AdapterWeightsFile),
                NamedWeights().Select(p => new KeyValuePair<string, Tensor>(PeftKeyPrefix + p.Key, p.Value)), dtype);
            File.WriteAllText(Path.Combine(temp, AdapterConfigFile), PeftConfigJson(baseModelNameOrPath));
            if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
            Directory.Move(temp, full);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>
    /// Copies adapter weights written by <see cref="SaveAdapters"/> (or PEFT, for the same targets and rank) into these
    /// adapters. Every adapter must be present with its shape, and no other LoRA weight.
    /// </summary>
    /// <param name="folder">A folder holding <c>adapter_model.safetensors</c>.</param>
    /// <exception cref="InvalidOperationException">The adapters are no longer attached.</exception>
    /// <exception cref="InvalidDataException">The file is missing or does not match these adapters; the message names it and the problems.</exception>
    public void LoadAdapters(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        EnsureAttached();
        var path = Path.Combine(Path.GetFullPath(folder), AdapterWeightsFile);
        if (!File.Exists(path)) throw new InvalidDataException($"Adapter weights '{path}' do not exist.");
        using var file = SafeTensorsFile.Open(path);
        var own = NamedWeights().ToDictionary(p => PeftKeyPrefix + p.Key, p => p.Value, StringComparer.Ordinal);
        var names = file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var missing = own.Keys.Where(k => !names.Contains(k)).ToList();
        var extra = names.Where(k => !own.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var mismatched = file.Tensors.Where(t => own.TryGetValue(t.Name, out var p) && !t.Shape.SequenceEqual(p.shape))
            .Select(t => $"{t.Name}: file [{string.Join(", ", t.Shape)}], adapter [{string.Join(", ", own[t.Name].shape)}]").ToList();
        if (missing.Count + extra.Count + mismatched.Count > 0)
            throw new InvalidDataException($"'{path}' does not match these adapters (rank {Rank}, {_adapters.Count} modules). "
                + $"Missing: [{string.Join(", ", missing.Take(10))}]; unexpected: [{string.Join(", ", extra.Take(10))}]; shape mismatch: [{string.Join("; ", mismatched.Take(10))}].");
        using var noGrad = no_grad();
        foreach (var (name, p) in own)
        {
            using var t = TorchSafeTensors.LoadTensor(file, name, p.device, p.dtype);
            p.copy_(t);
        }
    }

    private string PeftConfigJson(string? baseModel)
    {
        var config = new JsonObject
        {
            ["base_model_name_or_path"] = baseModel,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["layers_to_transform"] = _options.Layers is null ? null : new JsonArray([.. _options.Layers.Distinct().Order().Select(l => (JsonNode)l)]),
            ["lora_alpha"] = _options.Alpha,
            ["lora_dropout"] = _options.Dropout,
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = _options.Rank,
            ["target_modules"] = new JsonArray([.. _options.TargetModules.Distinct().Order(StringComparer.Ordinal).Select(t => (JsonNode)t)]),
            ["task_type"] = "CAUSAL_LM",
            ["use_rslora"] = false,
        };
        return config.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private void EnsureAttached()
    {
        if (!IsAttached) throw new InvalidOperationException("The LoRA adapters were already merged or removed.");
    }

    private void Restore()
    {
        foreach (var (p, grad) in _frozen) p.requires_grad = grad;
        IsAttached = false;
    }

    /// <summary>Removes adapters still attached (without merging).</summary>
    public void Dispose()
    {
        if (IsAttached) Remove();
    }
}
