using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Torch.Training.Idea;

/// <summary>
/// IDEA Prune's iterative FFN-width pruning (Li et al., 2025) as a <see cref="CausalLMTrainer"/> hook: inside a
/// window of the one training run it scores the MLP neurons by gradient sensitivity, smooths the scores by an
/// exponential moving average, and masks the lowest-scored neurons so that every layer's kept width follows a
/// <see cref="GradualWidthSchedule"/> down to the target; the run's single learning-rate schedule goes on untouched
/// (no re-warm-up), and the steps after the window recover. <see cref="ApplyPruning"/> then removes the masked
/// neurons physically.
/// </summary>
/// <remarks>
/// <para><b>Scores.</b> At each update step (see <see cref="GradualWidthSchedule.IsUpdateStep"/>) the fresh score of
/// neuron c is <see cref="FfnSensitivity.FromGradients"/>: the L2 norm of <c>|w·∂L/∂w|</c> over its gate_proj row,
/// up_proj row and down_proj column, from the step's accumulated (unclipped) gradients. The smoothed score is
/// <c>s ← β·s + (1 − β)·new</c>, and the first update sets <c>s = new</c> (no bias towards the zero start).</para>
/// <para><b>Masks.</b> After the scores, each layer masks its lowest smoothed scores among the still unmasked neurons
/// (ties: lower index first) until it keeps <see cref="GradualWidthSchedule.KeptWidthAt"/> neurons. A masked neuron
/// stays masked: its gate/up rows (and bias entries) and down column are zeroed after every optimizer step and their
/// gradients are zeroed before clipping, so it contributes exactly zero to the output and to the gradient norm, and
/// AdamW's leftover moments cannot revive it.</para>
/// <para><b>Resumption.</b> The scores, masks and update count are written into every trainer checkpoint
/// (<see cref="IdeaPruneConstants.StateFileName"/>) and read back by <see cref="CausalLMTrainer.TryResume"/>, so an
/// interrupted run continues with the same schedule and masks.</para>
/// </remarks>
public sealed partial class IdeaPruneHook : ITrainingHook
{
    private const int FormatVersion = 1;
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };

    private readonly LlamaForCausalLM _model;
    private readonly IdeaPruneOptions _options;
    private readonly ILogger _logger;
    private readonly bool[][] _masked;
    private float[][]? _scores;
    private Tensor[]? _keepMasks;
    private int _updates;
    private long _lastUpdateStep = -1;
    private bool _applied;

    /// <summary>Creates the hook for a model whose layers all have the same intermediate width.</summary>
    /// <param name="model">The model being trained (the one given to the trainer).</param>
    /// <param name="options">The settings (validated now and copied).</param>
    /// <param name="logger">A logger, or null.</param>
    /// <exception cref="System.ComponentModel.DataAnnotations.ValidationException">The options are invalid.</exception>
    /// <exception cref="ArgumentException">The layers' widths differ, or the target is not below the width.</exception>
    public IdeaPruneHook(LlamaForCausalLM model, IdeaPruneOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _model = model;
        _options = options.Clone();
        _logger = logger ?? NullLogger.Instance;
        var widths = model.Layers.Select(l => (int)l.Mlp.IntermediateSize).Distinct().ToList();
        if (widths.Count != 1)
            throw new ArgumentException($"IDEA Prune needs one intermediate width in every layer; the model has {string.Join(", ", widths)}.", nameof(model));
        if (_options.TargetIntermediateSize >= widths[0])
            throw new ArgumentException($"The target intermediate size ({_options.TargetIntermediateSize}) must be below the model's ({widths[0]}).", nameof(options));
        Schedule = _options.CreateSchedule(widths[0]);
        _masked = model.Layers.Select(_ => new bool[widths[0]]).ToArray();
    }

    /// <summary>The kept-width schedule.</summary>
    public GradualWidthSchedule Schedule { get; }

    /// <summary>The score-and-mask updates made so far.</summary>
    public int UpdateCount => _updates;

    /// <summary>The step of the last update, or −1.</summary>
    public long LastUpdateStep => _lastUpdateStep;

    /// <summary>The width every layer keeps now (unmasked neurons).</summary>
    public int KeptWidth => _masked[0].Count(m => !m);

    /// <summary>Whether the target width is reached (the window is over).</summary>
    public bool IsComplete => KeptWidth == Schedule.TargetWidth;

    /// <summary>Per layer, which neurons are masked (a copy).</summary>
    public IReadOnlyList<bool[]> Masked => _masked.Select(m => (bool[])m.Clone()).ToArray();

    /// <summary>Per layer, the smoothed scores (a copy), or null before the first update.</summary>
    public IReadOnlyList<float[]>? Scores => _scores?.Select(s => (float[])s.Clone()).ToArray();

    /// <inheritdoc/>
    public void OnGradientsReady(TrainingStepContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        ThrowIfApplied();
        if (Schedule.IsUpdateStep(context.Step) && context.Step != _lastUpdateStep) Update(context.Step);
        if (_keepMasks is null) return;
        using var noGrad = no_grad();
        for (int l = 0; l < _model.Layers.Count; l++)
        {
            var mlp = _model.Layers[l].Mlp;
            var rows = _keepMasks[l].unsqueeze(1);
            mlp.GateProj.weight!.grad?.mul_(rows);
            mlp.UpProj.weight!.grad?.mul_(rows);
            mlp.DownProj.weight!.grad?.mul_(_keepMasks[l].unsqueeze(0));
            mlp.GateProj.bias?.grad?.mul_(_keepMasks[l]);
            mlp.UpProj.bias?.grad?.mul_(_keepMasks[l]);
        }
    }

    /// <inheritdoc/>
    public void OnStepCompleted(TrainingStepContext context)
    {
        ThrowIfApplied();
        ApplyMasks();
    }

    /// <summary>Zeroes the masked neurons' weights (done after every optimizer step; call it after changing the weights by other means).</summary>
    public void ApplyMasks()
    {
        if (_keepMasks is null) return;
        using var noGrad = no_grad();
        for (int l = 0; l < _model.Layers.Count; l++)
        {
            var mlp = _model.Layers[l].Mlp;
            var rows = _keepMasks[l].unsqueeze(1);
            mlp.GateProj.weight!.mul_(rows);
            mlp.UpProj.weight!.mul_(rows);
            mlp.DownProj.weight!.mul_(_keepMasks[l].unsqueeze(0));
            mlp.GateProj.bias?.mul_(_keepMasks[l]);
            mlp.UpProj.bias?.mul_(_keepMasks[l]);
        }
    }

    /// <summary>
    /// Removes the masked neurons physically (<see cref="WidthPruner"/>, all layers in one plan), so the model becomes a
    /// standard one with <c>intermediate_size</c> = <see cref="KeptWidth"/>. The hook cannot be used afterwards.
    /// </summary>
    /// <returns>The model's new configuration.</returns>
    /// <exception cref="InvalidOperationException">Already applied.</exception>
    public LlamaConfig ApplyPruning()
    {
        ThrowIfApplied();
        ApplyMasks();
        var channels = new Dictionary<int, IReadOnlyCollection<int>>();
        for (int l = 0; l < _masked.Length; l++)
            channels[l] = Enumerable.Range(0, _masked[l].Length).Where(c => _masked[l][c]).ToArray();
        var config = _model.Prune(new WidthPruningPlan { Channels = channels });
        _applied = true;
        DisposeMasks();
        Log.Applied(_logger, config.IntermediateSize, _model.ParameterCount);
        return config;
    }

    /// <inheritdoc/>
    public void SaveState(string checkpointFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointFolder);
        var state = new State(FormatVersion, Settings(), _updates, _lastUpdateStep, _scores?.ToList(),
            _masked.Select(m => Enumerable.Range(0, m.Length).Where(c => m[c]).ToArray()).ToList());
        File.WriteAllText(Path.Combine(checkpointFolder, IdeaPruneConstants.StateFileName), JsonSerializer.Serialize(state, JsonOptions));
    }

    /// <inheritdoc/>
    public void LoadState(string checkpointFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointFolder);
        ThrowIfApplied();
        var path = Path.Combine(checkpointFolder, IdeaPruneConstants.StateFileName);
        if (!File.Exists(path))
            throw new InvalidDataException($"'{path}' is missing: the checkpoint was not written by a run with IDEA Prune.");
        State state;
        try
        {
            state = JsonSerializer.Deserialize<State>(File.ReadAllText(path), JsonOptions) ?? throw new InvalidDataException($"'{path}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid IDEA Prune state: {e.Message}", e);
        }
        if (state.FormatVersion != FormatVersion)
            throw new InvalidDataException($"'{path}' has format version {state.FormatVersion}; this hook reads {FormatVersion}.");
        if (state.Settings != Settings())
            throw new InvalidDataException($"'{path}' was written with other IDEA Prune settings ({state.Settings}); this run has {Settings()}.");
        int layers = _masked.Length, width = Schedule.FullWidth;
        if (state.Pruned is null || state.Pruned.Count != layers || (state.Scores is not null && (state.Scores.Count != layers || state.Scores.Any(s => s is null || s.Length != width))))
            throw new InvalidDataException($"'{path}' does not describe {layers} layers of {width} neurons.");
        for (int l = 0; l < layers; l++)
        {
            Array.Clear(_masked[l]);
            foreach (var c in state.Pruned[l] ?? [])
            {
                if (c < 0 || c >= width) throw new InvalidDataException($"'{path}': layer {l} masks neuron {c}, outside 0 … {width - 1}.");
                _masked[l][c] = true;
            }
        }
        if (_masked.Select(m => m.Count(x => x)).Distinct().Count() > 1)
            throw new InvalidDataException($"'{path}': the layers mask different numbers of neurons.");
        _scores = state.Scores?.Select(s => (float[])s.Clone()).ToArray();
        _updates = state.Updates;
        _lastUpdateStep = state.LastUpdateStep;
        RebuildMasks();
    }

    private void Update(long step)
    {
        var fresh = FfnSensitivity.FromGradients(_model);
        if (_scores is null)
        {
            _scores = fresh;
        }
        else
        {
            float beta = (float)_options.EmaBeta;
            for (int l = 0; l < _scores.Length; l++)
                for (int c = 0; c < _scores[l].Length; c++)
                    _scores[l][c] = beta * _scores[l][c] + (1 - beta) * fresh[l][c];
        }

        int keep = Schedule.KeptWidthAt(step);
        int before = KeptWidth;
        if (keep < before)
        {
            for (int l = 0; l < _masked.Length; l++)
                foreach (var c in FfnSensitivity.LowestChannels(_scores[l], keep, _masked[l])) _masked[l][c] = true;
            RebuildMasks();
        }
        _updates++;
        _lastUpdateStep = step;
        Log.Updated(_logger, step, _updates, before, keep, Schedule.TargetWidth);
    }

    private void RebuildMasks()
    {
        DisposeMasks();
        if (_masked.All(m => !m.Any(x => x))) return;
        var device = _model.Device;
        var dtype = _model.Layers[0].Mlp.GateProj.weight!.dtype;
        _keepMasks = _masked.Select(m => tensor(m.Select(x => x ? 0f : 1f).ToArray(), device: device).to(dtype)).ToArray();
        foreach (var mask in _keepMasks) mask.DetachFromDisposeScope();
    }

    private void DisposeMasks()
    {
        if (_keepMasks is null) return;
        foreach (var mask in _keepMasks) mask.Dispose();
        _keepMasks = null;
    }

    private void ThrowIfApplied()
    {
        if (_applied) throw new InvalidOperationException("The masks were already applied physically (ApplyPruning); the hook cannot be used any more.");
    }

    private Fingerprint Settings() => new(Schedule.FullWidth, Schedule.TargetWidth, Schedule.StartStep, Schedule.EndStep, Schedule.UpdateInterval,
        Schedule.Shape.ToString(), _options.EmaBeta, _masked.Length);

    private sealed record Fingerprint(int FullWidth, int TargetWidth, long StartStep, long EndStep, int UpdateInterval, string Shape, double EmaBeta, int Layers);

    private sealed record State(int FormatVersion, Fingerprint Settings, int Updates, long LastUpdateStep, List<float[]>? Scores, List<int[]> Pruned);

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "IDEA Prune step {Step} (update {Update}): FFN width {Before} -> {Kept} (target {Target}).")]
        public static partial void Updated(ILogger logger, long step, int update, int before, int kept, int target);

        [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "IDEA Prune: masked neurons removed; intermediate_size {Width}, {Parameters} parameters.")]
        public static partial void Applied(ILogger logger, int width, long parameters);
    }
}
