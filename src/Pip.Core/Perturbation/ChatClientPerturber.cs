using System.Collections.Concurrent;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Pip;

/// <summary>
/// Makes twins by asking a chat model (any <see cref="IChatClient"/>) for a meaning-changing single-character edit of
/// one word, of a kind drawn with the seed; invalid answers, failed requests and timeouts fall back to a rule-based
/// perturber. See <see cref="ChatClientPerturberOptions"/>.
/// </summary>
/// <remarks>
/// <para>Cancellation of the caller's token propagates (no fallback); a request that fails or exceeds
/// <see cref="ChatClientPerturberOptions.RequestTimeout"/> counts as a failed attempt.</para>
/// <para>Determinism: the kind depends on the seed only; the answer depends on the model. Requests carry the seed
/// (<c>ChatOptions.Seed</c>) and temperature 0 by default, and with <see cref="ChatClientPerturberOptions.CacheTwins"/>
/// the same text and seed give the same twin for the life of the perturber.</para>
/// <para>Thread-safe when the chat client and the fallback are.</para>
/// </remarks>
internal sealed partial class ChatClientPerturber : IPerturber
{
    private readonly IChatClient _client;
    private readonly IPerturber _fallback;
    private readonly ChatClientPerturberOptions _options;
    private readonly PerturbationKind[] _kinds;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<(string Text, int Seed), (string Text, IReadOnlyList<PerturbationEdit> Edits)>? _cache;

    public ChatClientPerturber(IChatClient client, IPerturber fallback, ChatClientPerturberOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(fallback);
        ArgumentNullException.ThrowIfNull(options);
        _client = client;
        _fallback = fallback;
        _options = options.Clone();
        _kinds = [.. _options.Kinds.Distinct().Order()];
        _logger = logger ?? NullLogger.Instance;
        _cache = _options.CacheTwins ? new() : null;
    }

    public string Name => ChatClientPerturberConstants.Name;

    /// <summary>The rule-based perturber used when the model gives no valid twin.</summary>
    public IPerturber Fallback => _fallback;

    public async ValueTask<PerturbedSample> PerturbAsync(CalibrationSample sample, int seed, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sample);
        cancellationToken.ThrowIfCancellationRequested();
        string text = sample.Text ?? string.Empty;
        if (_cache is not null && _cache.TryGetValue((text, seed), out var cached))
        {
            return new PerturbedSample(sample, cached.Text, cached.Edits);
        }

        PerturbedSample twin = await AskAsync(sample, text, seed, cancellationToken).ConfigureAwait(false);
        _cache?.TryAdd((text, seed), (twin.Text, twin.Edits));
        return twin;
    }

    /// <summary>The kind a twin of <paramref name="seed"/> asks for.</summary>
    internal PerturbationKind KindFor(int seed) => _kinds[new Random(seed).Next(_kinds.Length)];

    /// <summary>The user prompt asking for an edit of <paramref name="kind"/> of <paramref name="text"/>.</summary>
    internal string PromptFor(PerturbationKind kind, string text) =>
        _options.TemplateFor(kind).Replace(ChatClientPerturberConstants.TextPlaceholder, text, StringComparison.Ordinal);

    private async Task<PerturbedSample> AskAsync(CalibrationSample sample, string text, int seed, CancellationToken cancellationToken)
    {
        if (text.Trim().Length == 0)
        {
            return await FallBackAsync(sample, seed, "the sample is empty", cancellationToken).ConfigureAwait(false);
        }

        PerturbationKind kind = KindFor(seed);
        List<ChatMessage> messages =
        [
            new(ChatRole.System, _options.SystemPrompt),
            new(ChatRole.User, PromptFor(kind, text)),
        ];
        string reason = string.Empty;
        for (int attempt = 1; attempt <= _options.MaxAttempts; attempt++)
        {
            var chatOptions = new ChatOptions
            {
                ModelId = _options.ModelId,
                Temperature = _options.Temperature,
                Seed = seed + (long)(attempt - 1),
            };
            string? answer;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(_options.RequestTimeout);
                try
                {
                    ChatResponse response = await _client.GetResponseAsync(messages, chatOptions, timeout.Token).ConfigureAwait(false);
                    answer = response?.Text;
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                catch (OperationCanceledException) when (timeout.IsCancellationRequested)
                {
                    reason = $"the request took longer than {_options.RequestTimeout.TotalSeconds:0.###} s";
                    LogAttemptFailed(_logger, sample.Index, attempt, reason, null);
                    continue;
                }
                catch (Exception e)
                {
                    reason = $"the request failed ({e.GetType().Name}: {e.Message})";
                    LogAttemptFailed(_logger, sample.Index, attempt, reason, e);
                    continue;
                }
            }

            if (ChatAnswerValidator.TryGetEdit(text, answer, kind, _options, out PerturbationEdit? edit, out reason))
            {
                LogAccepted(_logger, sample.Index, kind, edit!.Before, edit.After, attempt);
                return new PerturbedSample(sample, WordEditor.ApplyEdits(text, [edit]), [edit]);
            }

            LogAttemptFailed(_logger, sample.Index, attempt, reason, null);
        }

        return await FallBackAsync(sample, seed, reason, cancellationToken).ConfigureAwait(false);
    }

    private async Task<PerturbedSample> FallBackAsync(CalibrationSample sample, int seed, string reason, CancellationToken cancellationToken)
    {
        LogFallback(_logger, sample.Index, reason, _fallback.Name);
        return await _fallback.PerturbAsync(sample, seed, cancellationToken).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Sample {Sample}: no valid twin from the chat model ({Reason}); the {Fallback} perturber makes it")]
    private static partial void LogFallback(ILogger logger, int sample, string reason, string fallback);

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "Sample {Sample}, attempt {Attempt}: answer rejected: {Reason}")]
    private static partial void LogAttemptFailed(ILogger logger, int sample, int attempt, string reason, Exception? exception);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "Sample {Sample}: {Kind} '{Before}' → '{After}' accepted (attempt {Attempt})")]
    private static partial void LogAccepted(ILogger logger, int sample, PerturbationKind kind, string before, string after, int attempt);
}
