using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Pip.Checkpoints;
using Pip.Torch.Checkpoints;
using Pip.Torch.Models;
using Pip.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Training;

/// <summary>
/// Trains a <see cref="LlamaForCausalLM"/> on packed token sequences: AdamW (decoupled weight decay on matrices only,
/// not on norms, biases or embeddings), linear warm-up then cosine decay (<see cref="LearningRateSchedule"/>),
/// gradient clipping by global norm, gradient accumulation, periodic validation loss, early stopping, and resumable
/// checkpoints.
/// </summary>
/// <remarks>
/// <para>The parameters are trained in their own type; train in float32 (the master weights) and convert when saving.
/// Only parameters with <c>requires_grad</c> are trained (freeze others before creating the trainer).</para>
/// <para>The data order is a seeded permutation per epoch, so the whole run state is (step, epoch, position in epoch,
/// weights, optimizer moments, and each hook's own state, see <see cref="ITrainingHook.SaveState"/>): a run resumed from a checkpoint (<see cref="TryResume"/>) makes exactly the same steps
/// as an uninterrupted one, provided the loss is deterministic. Checkpoints are written to a temporary folder and then
/// moved over the previous one.</para>
/// </remarks>
public sealed class CausalLMTrainer : IDisposable
{
    private const int FormatVersion = 1;
    private const string WeightsFile = "model.safetensors";
    private const string OptimizerFile = "optimizer.bin";
    private const string StateFile = "trainer_state.json";
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private readonly LlamaForCausalLM _model;
    private readonly TrainingOptions _options;
    private readonly ILogger _logger;
    private readonly TrainingLoss _loss;
    private readonly List<ITrainingHook> _hooks;
    private readonly List<(string Name, Parameter Parameter)> _trained;
    private readonly AdamW _optimizer;
    private readonly LearningRateSchedule _schedule;
    private readonly List<TrainStepRecord> _history = [];
    private readonly List<ValidationRecord> _validation = [];
    private long _step;
    private int _epoch;
    private int _position;
    private long _tokensSeen;
    private TimeSpan _elapsedBefore;
    private RunFingerprint? _resumedFingerprint;

    /// <summary>Creates a trainer; the options are validated.</summary>
    /// <param name="model">The model to train (its trainable parameters are updated in place).</param>
    /// <param name="options">The settings.</param>
    /// <param name="logger">A logger, or null.</param>
    /// <param name="loss">The objective, or null for <see cref="CrossEntropyLoss"/>.</param>
    /// <param name="hooks">Step callbacks, or null.</param>
    /// <exception cref="System.ComponentModel.DataAnnotations.ValidationException">The options are invalid; the message lists every problem.</exception>
    /// <exception cref="ArgumentException">The model has no trainable parameter.</exception>
    public CausalLMTrainer(LlamaForCausalLM model, TrainingOptions options, ILogger? logger = null, TrainingLoss? loss = null, IEnumerable<ITrainingHook>? hooks = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _model = model;
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _loss = loss ?? CrossEntropyLoss;
        _hooks = hooks?.ToList() ?? [];
        _schedule = options.CreateSchedule();
        _trained = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        if (_trained.Count == 0) throw new ArgumentException("The model has no parameter that requires a gradient.", nameof(model));
        var decay = _trained.Where(p => UsesWeightDecay(p.Name, p.Parameter)).Select(p => p.Parameter).ToList();
        var noDecay = _trained.Where(p => !UsesWeightDecay(p.Name, p.Parameter)).Select(p => p.Parameter).ToList();
        var groups = new List<AdamW.ParamGroup>();
        if (decay.Count > 0) groups.Add(new AdamW.ParamGroup(decay, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay));
        if (noDecay.Count > 0) groups.Add(new AdamW.ParamGroup(noDecay, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, 0.0));
        _optimizer = optim.AdamW(groups, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
    }

    /// <summary>The learning-rate schedule of the run.</summary>
    public LearningRateSchedule Schedule => _schedule;

    /// <summary>Optimizer steps done (including those of a resumed checkpoint).</summary>
    public long Step => _step;

    /// <summary>Every step so far.</summary>
    public IReadOnlyList<TrainStepRecord> History => _history;

    /// <summary>Every validation evaluation so far.</summary>
    public IReadOnlyList<ValidationRecord> Validation => _validation;

    /// <summary>The trained parameters by name (the live tensors).</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> TrainedParameters => _trained;

    /// <summary>
    /// Whether a parameter gets weight decay: matrices do; norms, biases (1-D) and the token embedding do not.
    /// </summary>
    /// <param name="name">The parameter's Hugging Face name.</param>
    /// <param name="parameter">The parameter.</param>
    /// <returns>True to decay.</returns>
    public static bool UsesWeightDecay(string name, Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(parameter);
        return parameter.dim() >= 2 && !name.Contains("embed_tokens", StringComparison.Ordinal);
    }

    /// <summary>The mean next-token cross-entropy of a batch (computed in float32).</summary>
    /// <param name="model">The model.</param>
    /// <param name="batch">The batch.</param>
    /// <returns>A scalar loss.</returns>
    public static Tensor CrossEntropyLoss(LlamaForCausalLM model, TrainingBatch batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var logits = model.Logits(batch.InputIds);
        var vocab = logits.shape[^1];
        var flat = logits.reshape(-1, vocab);
        if (flat.dtype != ScalarType.Float32) flat = flat.to(ScalarType.Float32);
        var loss = nn.functional.cross_entropy(flat, batch.Targets.reshape(-1));
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>The global L2 norm of the gradients of <paramref name="parameters"/> (those without a gradient are skipped).</summary>
    /// <param name="parameters">The parameters.</param>
    /// <returns>The norm.</returns>
    public static double GlobalGradientNorm(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double sum = 0;
        foreach (var p in parameters)
        {
            var g = p.grad;
            if (g is null) continue;
            sum += g.to(ScalarType.Float64).square().sum().item<double>();
        }
        return Math.Sqrt(sum);
    }

    /// <summary>
    /// Scales all gradients by <c>maxNorm / (norm + 1e-6)</c> when their global L2 norm exceeds <paramref name="maxNorm"/>
    /// (as PyTorch's <c>clip_grad_norm_</c>).
    /// </summary>
    /// <param name="parameters">The parameters.</param>
    /// <param name="maxNorm">The bound (positive).</param>
    /// <returns>The norm before clipping.</returns>
    public static double ClipGradientNorm(IReadOnlyList<Tensor> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "The bound must be positive.");
        double norm = GlobalGradientNorm(parameters);
        if (norm > maxNorm)
        {
            double scale = maxNorm / (norm + 1e-6);
            using var noGrad = no_grad();
            foreach (var p in parameters) p.grad?.mul_(scale);
        }
        return norm;
    }

    /// <summary>
    /// Loads the checkpoint in <see cref="TrainingOptions.CheckpointFolder"/> if there is one: weights, optimizer state,
    /// step, data position and history. The run then continues where it stopped, on the same schedule.
    /// </summary>
    /// <returns>True if a checkpoint was loaded; false if there is none.</returns>
    /// <exception cref="InvalidDataException">The checkpoint is unreadable or was made with other settings; the message names the file.</exception>
    public bool TryResume()
    {
        var folder = _options.CheckpointFolder;
        if (folder is null) return false;
        if (!File.Exists(Path.Combine(folder, StateFile)))
        {
            // A crash between the two renames of a save leaves the previous checkpoint under ".old".
            var old = folder + ".old";
            if (!File.Exists(Path.Combine(old, StateFile))) return false;
            folder = old;
        }

        var statePath = Path.Combine(folder, StateFile);
        CheckpointState state;
        try
        {
            state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(statePath), JsonOptions)
                ?? throw new InvalidDataException($"'{statePath}' is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{statePath}' is not a valid trainer state: {e.Message}", e);
        }
        if (state.FormatVersion != FormatVersion)
            throw new InvalidDataException($"'{statePath}' has format version {state.FormatVersion}; this trainer reads {FormatVersion}.");
        var expected = Fingerprint(null);
        if (!state.Fingerprint.SameSchedule(expected))
            throw new InvalidDataException($"'{statePath}' was written by a run with other settings ({state.Fingerprint}); this run has {expected}. Resume with the same settings or start a new run.");

        LoadWeights(Path.Combine(folder, WeightsFile));
        var optimizerPath = Path.Combine(folder, OptimizerFile);
        try
        {
            using var stream = File.OpenRead(optimizerPath);
            using var reader = new BinaryReader(stream);
            _optimizer.load_state_dict(reader);
        }
        catch (Exception e) when (e is ArgumentException or EndOfStreamException or InvalidDataException or IOException)
        {
            throw new InvalidDataException($"'{optimizerPath}' does not match this model's trained parameters: {e.Message}", e);
        }

        foreach (var hook in _hooks) hook.LoadState(folder);

        _step = state.Step;
        _epoch = state.Epoch;
        _position = state.Position;
        _tokensSeen = state.TokensSeen;
        _elapsedBefore = TimeSpan.FromSeconds(state.ElapsedSeconds);
        _history.Clear();
        _history.AddRange(state.History);
        _validation.Clear();
        _validation.AddRange(state.Validation);
        _resumedFingerprint = state.Fingerprint;
        _logger.LogInformation("Resumed from {Folder} at step {Step}/{Total} (epoch {Epoch}, position {Position}, {Tokens} tokens seen).",
            folder, _step, _options.MaxSteps, _epoch, _position, _tokensSeen);
        return true;
    }

    /// <summary>
    /// Trains until <see cref="TrainingOptions.MaxSteps"/> optimizer steps are done, the validation loss flattens, or
    /// <see cref="TrainingOptions.MaxDuration"/> is reached.
    /// On cancellation a checkpoint is written (when a folder is set) before <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <param name="train">The training sequences.</param>
    /// <param name="validation">Held-out sequences for the validation loss, or null.</param>
    /// <param name="progress">Receives progress after each step, or null.</param>
    /// <param name="cancellationToken">Stops training between steps.</param>
    /// <returns>The outcome.</returns>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public TrainingResult Train(PackedSequences train, PackedSequences? validation = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count < _options.BatchSize)
            throw new ArgumentException($"The training data has {train.Count} sequences, fewer than one batch ({_options.BatchSize}).", nameof(train));
        if (_resumedFingerprint is { } resumed && resumed.TrainSequences != train.Count)
            throw new ArgumentException($"The checkpoint was made on {resumed.TrainSequences} training sequences; this data has {train.Count}. Resume on the same data.", nameof(train));
        _resumedFingerprint ??= Fingerprint(train);
        if (_resumedFingerprint.TrainSequences == 0) _resumedFingerprint = _resumedFingerprint with { TrainSequences = train.Count };

        var device = _model.Device;
        var parameters = _trained.Select(p => (Tensor)p.Parameter).ToList();
        var session = Stopwatch.StartNew();
        var sinceCheckpoint = Stopwatch.StartNew();
        long sessionTokens = 0;
        int[] order = Permutation(train.Count, _options.Seed, _epoch);
        var stop = TrainingStopReason.Completed;

        if (validation is not null && _options.EvaluateEvery > 0 && _validation.Count == 0)
        {
            var initial = EvaluateLoss(validation, cancellationToken);
            _validation.Add(new ValidationRecord(_step, initial, _tokensSeen));
            _logger.LogInformation("Step {Step}: validation loss {Loss:F4} (perplexity {Ppl:F1}).", _step, initial, Math.Exp(initial));
        }

        _model.train();
        try
        {
            while (_step < _options.MaxSteps)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    if (_options.CheckpointFolder is not null) SaveCheckpoint(session.Elapsed);
                    cancellationToken.ThrowIfCancellationRequested();
                }

                double lr = _schedule.At(_step);
                foreach (var group in _optimizer.ParamGroups) group.LearningRate = lr;
                _optimizer.zero_grad();
                double lossSum = 0;
                for (int micro = 0; micro < _options.GradientAccumulationSteps; micro++)
                {
                    if (_position + _options.BatchSize > train.Count)
                    {
                        _epoch++;
                        _position = 0;
                        order = Permutation(train.Count, _options.Seed, _epoch);
                    }
                    var indices = new ArraySegment<int>(order, _position, _options.BatchSize);
                    _position += _options.BatchSize;
                    using var scope = NewDisposeScope();
                    using var batch = train.CreateBatch(indices, device);
                    var loss = _loss(_model, batch);
                    var value = loss.item<float>();
                    if (!float.IsFinite(value))
                        throw new InvalidOperationException($"The training loss became {value} at step {_step}; lower the learning rate or check the data.");
                    lossSum += value;
                    (loss / _options.GradientAccumulationSteps).backward();
                    _tokensSeen += batch.TokenCount;
                    sessionTokens += batch.TokenCount;
                }
                double trainLoss = lossSum / _options.GradientAccumulationSteps;

                var context = new TrainingStepContext(_model, _step, lr, trainLoss, double.NaN);
                foreach (var hook in _hooks) hook.OnGradientsReady(context);
                double norm = _options.MaxGradientNorm > 0 ? ClipGradientNorm(parameters, _options.MaxGradientNorm) : GlobalGradientNorm(parameters);
                context = context with { GradientNorm = norm };
                foreach (var hook in _hooks) hook.OnBeforeOptimizerStep(context);
                using (NewDisposeScope()) _optimizer.step();
                foreach (var hook in _hooks) hook.OnStepCompleted(context);

                _step++;
                _history.Add(new TrainStepRecord(_step, trainLoss, lr, norm));
                var elapsed = _elapsedBefore + session.Elapsed;
                double tokensPerSecond = sessionTokens / Math.Max(session.Elapsed.TotalSeconds, 1e-9);
                if (_options.LogEvery > 0 && _step % _options.LogEvery == 0)
                    _logger.LogInformation("Step {Step}/{Total}: loss {Loss:F4}, lr {Lr:E2}, grad norm {Norm:F3}, {Tps:F0} tokens/s, {Elapsed}.",
                        _step, _options.MaxSteps, trainLoss, lr, norm, tokensPerSecond, elapsed.ToString(@"hh\:mm\:ss"));

                double? validationLoss = null;
                bool evaluate = validation is not null && _options.EvaluateEvery > 0
                    && (_step % _options.EvaluateEvery == 0 || _step == _options.MaxSteps);
                if (evaluate)
                {
                    validationLoss = EvaluateLoss(validation!, cancellationToken);
                    _validation.Add(new ValidationRecord(_step, validationLoss.Value, _tokensSeen));
                    _model.train();
                    _logger.LogInformation("Step {Step}: validation loss {Loss:F4} (perplexity {Ppl:F1}).", _step, validationLoss.Value, Math.Exp(validationLoss.Value));
                }

                progress?.Report(new TrainingProgress(_step, _options.MaxSteps, trainLoss, lr, norm, validationLoss, _tokensSeen, tokensPerSecond, elapsed));

                if (evaluate && _options.EarlyStoppingPatience > 0
                    && EarlyStopping.HasFlattened(_validation.Select(v => v.Loss).ToList(), _options.EarlyStoppingPatience, _options.EarlyStoppingMinDelta))
                {
                    _logger.LogInformation("Validation loss has flattened: stopping at step {Step}.", _step);
                    stop = TrainingStopReason.EarlyStopped;
                    break;
                }

                if (_options.MaxDuration is { } limit && _elapsedBefore + session.Elapsed >= limit && _step < _options.MaxSteps)
                {
                    _logger.LogInformation("Time limit {Limit} reached at step {Step}/{Total}: stopping.", limit, _step, _options.MaxSteps);
                    if (validation is not null && _options.EvaluateEvery > 0 && !evaluate)
                    {
                        var last = EvaluateLoss(validation, cancellationToken);
                        _validation.Add(new ValidationRecord(_step, last, _tokensSeen));
                        _logger.LogInformation("Step {Step}: validation loss {Loss:F4} (perplexity {Ppl:F1}).", _step, last, Math.Exp(last));
                    }
                    stop = TrainingStopReason.TimeLimit;
                    break;
                }

                bool checkpointDue = _options.CheckpointFolder is not null && _step < _options.MaxSteps
                    && ((_options.CheckpointEvery > 0 && _step % _options.CheckpointEvery == 0)
                        || (_options.CheckpointInterval is { } interval && sinceCheckpoint.Elapsed >= interval));
                if (checkpointDue)
                {
                    SaveCheckpoint(session.Elapsed);
                    sinceCheckpoint.Restart();
                }
            }
        }
        finally
        {
            _model.eval();
        }

        var total = _elapsedBefore + session.Elapsed;
        if (_options.CheckpointFolder is not null) SaveCheckpoint(session.Elapsed);
        return new TrainingResult(_step, stop, _tokensSeen, total, _history.ToList(), _validation.ToList());
    }

    /// <summary>The mean loss over (the first <see cref="TrainingOptions.MaxValidationSequences"/>) validation sequences, token-weighted, without gradients.</summary>
    /// <param name="validation">The sequences.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <returns>The mean loss in nats per token.</returns>
    public double EvaluateLoss(PackedSequences validation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(validation);
        int count = _options.MaxValidationSequences > 0 ? Math.Min(_options.MaxValidationSequences, validation.Count) : validation.Count;
        _model.eval();
        using var noGrad = no_grad();
        double sum = 0;
        long tokens = 0;
        for (int start = 0; start < count; start += _options.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(_options.BatchSize, count - start);
            using var scope = NewDisposeScope();
            using var batch = validation.CreateBatch(Enumerable.Range(start, n).ToArray(), _model.Device);
            using var loss = _loss(_model, batch);
            sum += loss.item<float>() * batch.TokenCount;
            tokens += batch.TokenCount;
        }
        return sum / tokens;
    }

    /// <summary>Writes the resumable checkpoint to <see cref="TrainingOptions.CheckpointFolder"/> (atomically: temporary folder, then moved).</summary>
    /// <exception cref="InvalidOperationException">No checkpoint folder is set.</exception>
    public void SaveCheckpoint() => SaveCheckpoint(TimeSpan.Zero);

    private void SaveCheckpoint(TimeSpan sessionElapsed)
    {
        var folder = _options.CheckpointFolder ?? throw new InvalidOperationException("No CheckpointFolder is set.");
        folder = Path.GetFullPath(folder);
        var parent = Path.GetDirectoryName(folder)!;
        Directory.CreateDirectory(parent);
        var temp = folder + ".tmp";
        var old = folder + ".old";
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        Directory.CreateDirectory(temp);

        TorchSafeTensors.SaveFile(Path.Combine(temp, WeightsFile), _trained.Select(p => new KeyValuePair<string, Tensor>(p.Name, p.Parameter)));
        using (var stream = File.Create(Path.Combine(temp, OptimizerFile)))
        using (var writer = new BinaryWriter(stream))
        {
            _optimizer.save_state_dict(writer);
        }
        var state = new CheckpointState(FormatVersion, _step, _epoch, _position, _tokensSeen, (_elapsedBefore + sessionElapsed).TotalSeconds,
            _resumedFingerprint ?? Fingerprint(null), _history.ToList(), _validation.ToList());
        File.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(state, JsonOptions));
        foreach (var hook in _hooks) hook.SaveState(temp);

        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(folder)) Directory.Move(folder, old);
        Directory.Move(temp, folder);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        _logger.LogInformation("Checkpoint written to {Folder} at step {Step}.", folder, _step);
    }

    private void LoadWeights(string path)
    {
        using var file = OpenSafeTensors(path);
        var own = _trained.ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal);
        var names = file.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var missing = own.Keys.Where(k => !names.Contains(k)).ToList();
        var extra = names.Where(k => !own.ContainsKey(k)).ToList();
        if (missing.Count + extra.Count > 0)
            throw new InvalidDataException($"'{path}' does not hold this model's trained parameters. Missing: [{string.Join(", ", missing)}]; unexpected: [{string.Join(", ", extra)}].");
        using var noGrad = no_grad();
        foreach (var (name, p) in own)
        {
            using var t = TorchSafeTensors.LoadTensor(file, name, p.device, p.dtype);
            if (!t.shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"'{path}': '{name}' has shape [{string.Join(", ", t.shape)}], the model [{string.Join(", ", p.shape)}].");
            p.copy_(t);
        }
    }

    private static SafeTensorsFile OpenSafeTensors(string path)
    {
        try
        {
            return SafeTensorsFile.Open(path);
        }
        catch (FileNotFoundException e)
        {
            throw new InvalidDataException($"The checkpoint weights '{path}' are missing.", e);
        }
    }

    private RunFingerprint Fingerprint(PackedSequences? train) => new(
        _options.LearningRate, _options.MinLearningRateRatio, _options.WarmupSteps, _options.MaxSteps, _options.BatchSize,
        _options.GradientAccumulationSteps, _options.Seed, train?.SequenceLength ?? 0, train?.Count ?? 0);

    /// <summary>The seeded order of the sequences in one epoch (Fisher–Yates with a per-epoch seed).</summary>
    /// <param name="count">The number of sequences.</param>
    /// <param name="seed">The run seed.</param>
    /// <param name="epoch">The epoch.</param>
    /// <returns>A permutation of 0 … count − 1.</returns>
    internal static int[] Permutation(int count, int seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        // HashCode.Combine is randomised per process; mix the seed and epoch deterministically.
        var random = new Random(unchecked((seed * 1_000_003) ^ (epoch * 7_919)) & int.MaxValue);
        for (int i = count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <inheritdoc/>
    public void Dispose() => _optimizer.Dispose();

    private sealed record RunFingerprint(double LearningRate, double MinLearningRateRatio, int WarmupSteps, int MaxSteps, int BatchSize,
        int GradientAccumulationSteps, int Seed, int SequenceLength, int TrainSequences)
    {
        public bool SameSchedule(RunFingerprint other) =>
            LearningRate == other.LearningRate && MinLearningRateRatio == other.MinLearningRateRatio && WarmupSteps == other.WarmupSteps
            && MaxSteps == other.MaxSteps && BatchSize == other.BatchSize && GradientAccumulationSteps == other.GradientAccumulationSteps && Seed == other.Seed;
    }

    private sealed record CheckpointState(int FormatVersion, long Step, int Epoch, int Position, long TokensSeen, double ElapsedSeconds,
        RunFingerprint Fingerprint, List<TrainStepRecord> History, List<ValidationRecord> Validation);
}
