using Pip.Tokenization;

namespace Pip.Evaluation;

/// <summary>A log-likelihood request: how likely is <paramref name="Continuation"/> after <paramref name="Context"/>.</summary>
/// <param name="Context">The conditioning text (may be empty; then the scorer's prefix token conditions).</param>
/// <param name="Continuation">The text to score (not empty).</param>
public sealed record LoglikelihoodRequest(string Context, string Continuation);

/// <summary>A log-likelihood request in token ids.</summary>
/// <param name="Context">The context ids (BOS included where the tokenizer adds it; at least one id).</param>
/// <param name="Continuation">The continuation ids, whose log-probabilities are summed (at least one id).</param>
public sealed record EncodedRequest(IReadOnlyList<int> Context, IReadOnlyList<int> Continuation);

/// <summary>The answer to a <see cref="LoglikelihoodRequest"/>.</summary>
/// <param name="LogLikelihood">The summed natural-log probability of the continuation's tokens.</param>
/// <param name="IsGreedy">Whether every continuation token is the model's argmax at its position.</param>
public readonly record struct LoglikelihoodResult(double LogLikelihood, bool IsGreedy);

/// <summary>Scores log-likelihood requests with a language model.</summary>
/// <remarks>
/// The requests of one call belong together (the choices of one multiple-choice item); an implementation may batch them.
/// </remarks>
public interface ILoglikelihoodScorer
{
    /// <summary>Scores requests.</summary>
    /// <param name="requests">The requests.</param>
    /// <param name="cancellationToken">Cancels the work.</param>
    /// <returns>One result per request, in order.</returns>
    IReadOnlyList<LoglikelihoodResult> Score(IReadOnlyList<LoglikelihoodRequest> requests, CancellationToken cancellationToken = default);
}

/// <summary>
/// Turns text requests into token ids as lm-evaluation-harness does for causal models (<c>LM._encode_pair</c>):
/// trailing whitespace of the context moves to the front of the continuation; the whole string context + continuation
/// is encoded, the context is encoded alone, and the continuation is the whole encoding from the context encoding's
/// length on (so a token merged across the boundary is scored as part of the continuation). An empty context is
/// replaced by a single prefix token (BOS, or EOS where there is none), the continuation then encoded without special
/// tokens; when the continuation already starts with that token, its first token becomes the context.
/// </summary>
public sealed class RequestEncoder
{
    private readonly Func<string, bool, IReadOnlyList<int>> _encode;

    /// <summary>Creates an encoder.</summary>
    /// <param name="encode">
    /// Encodes a text; the flag says whether to add special tokens the way the tokenizer does by default (Hugging Face's
    /// <c>add_special_tokens=True</c>: the BOS token for Llama) or none at all.
    /// </param>
    /// <param name="prefixTokenId">The token that conditions a request with an empty context, or null (then an empty context is refused).</param>
    public RequestEncoder(Func<string, bool, IReadOnlyList<int>> encode, int? prefixTokenId)
    {
        ArgumentNullException.ThrowIfNull(encode);
        _encode = encode;
        PrefixTokenId = prefixTokenId;
    }

    /// <summary>The token that conditions a request with an empty context, or null.</summary>
    public int? PrefixTokenId { get; }

    /// <summary>
    /// An encoder over a Hugging Face tokenizer: special tokens mean a BOS token when <see cref="HfTokenizer.AddBosByDefault"/>
    /// and the text does not already start with the BOS token's text (as lm-evaluation-harness checks); the prefix
    /// token is BOS, else EOS.
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <returns>The encoder.</returns>
    public static RequestEncoder FromTokenizer(HfTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var bosText = tokenizer.BosTokenId is { } bos ? tokenizer.IdToToken(bos) : null;
        return new RequestEncoder(
            (text, special) => tokenizer.Encode(text,
                special && tokenizer.AddBosByDefault && !(bosText is { Length: > 0 } && text.StartsWith(bosText, StringComparison.Ordinal))),
            tokenizer.BosTokenId ?? tokenizer.EosTokenId);
    }

    /// <summary>
    /// Moves the trailing whitespace of a context to the front of its continuation (lm-evaluation-harness does this so
    /// that the space before a word is tokenized with the word). Whitespace is Python's <c>str.isspace</c>.
    /// </summary>
    /// <param name="context">The context.</param>
    /// <param name="continuation">The continuation.</param>
    /// <returns>The adjusted pair.</returns>
    public static (string Context, string Continuation) MoveTrailingWhitespace(string context, string continuation)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuation);
        var end = context.Length;
        while (end > 0 && IsPythonSpace(context[end - 1])) end--;
        return end == context.Length ? (context, continuation) : (context[..end], context[end..] + continuation);
    }

    /// <summary>Encodes a request.</summary>
    /// <param name="request">The request.</param>
    /// <returns>The token ids.</returns>
    /// <exception cref="ArgumentException">The continuation encodes to no token, or the context is empty and there is no prefix token.</exception>
    public EncodedRequest Encode(LoglikelihoodRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Context, nameof(request));
        ArgumentNullException.ThrowIfNull(request.Continuation, nameof(request));
        if (request.Context.Length == 0)
        {
            var prefix = PrefixTokenId ?? throw new ArgumentException(
                $"The request has an empty context and the tokenizer has no BOS or EOS token to condition on (continuation '{Shorten(request.Continuation)}').", nameof(request));
            var tokens = _encode(request.Continuation, false);
            if (tokens.Count == 0) throw EmptyContinuation(request);
            return tokens[0] != prefix
                ? new EncodedRequest([prefix], tokens.ToArray())
                : tokens.Count > 1
                    ? new EncodedRequest([tokens[0]], tokens.Skip(1).ToArray())
                    : throw EmptyContinuation(request);
        }

        var (context, continuation) = MoveTrailingWhitespace(request.Context, request.Continuation);
        var whole = _encode(context + continuation, true);
        var contextIds = _encode(context, true);
        if (whole.Count <= contextIds.Count) throw EmptyContinuation(request);
        var continuationIds = new int[whole.Count - contextIds.Count];
        for (var i = 0; i < continuationIds.Length; i++) continuationIds[i] = whole[contextIds.Count + i];
        if (contextIds.Count == 0)
            throw new ArgumentException($"The context '{Shorten(request.Context)}' encodes to no token.", nameof(request));
        return new EncodedRequest(contextIds.ToArray(), continuationIds);
    }

    private static ArgumentException EmptyContinuation(LoglikelihoodRequest request) =>
        new($"The continuation '{Shorten(request.Continuation)}' encodes to no token after the context '{Shorten(request.Context)}'.", nameof(request));

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";

    /// <summary>Python's <c>str.isspace</c> for one UTF-16 unit: .NET whitespace plus the separators U+001C–U+001F.</summary>
    internal static bool IsPythonSpace(char c) => char.IsWhiteSpace(c) || (c >= '\u001C' && c <= '\u001F');
}
