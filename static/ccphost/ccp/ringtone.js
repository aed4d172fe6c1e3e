// Exactly one tab of an agent plays the ringtone: the holder of a Web Lock per agent.

export class Ringtone {
  constructor({ url, disabled, lockName }) {
    this.url = url;
    this.disabled = disabled;
    this.lockName = lockName;
    this.isMaster = false;
    this.ringing = false;
    this.audio = null;
    this.electMaster();
  }

  electMaster() {
    if (!navigator.locks) {
      this.isMaster = true;
      return;
    }
    // The promise never resolves while this tab lives: the lock passes on when it closes.
    navigator.locks.request(this.lockName, () => {
      this.isMaster = true;
      document.documentElement.dataset.ringtoneMaster = "true";
      if (this.ringing) this.play();
      return new Promise(() => {});
    });
  }

  configure({ disableRingtone, ringtoneUrl } = {}) {
    if (typeof disableRingtone === "boolean") this.disabled = disableRingtone;
    if (typeof ringtoneUrl === "string" && ringtoneUrl) {
      this.url = ringtoneUrl;
      if (this.audio) {
        this.audio.pause();
        this.audio = null;
      }
    }
    if (this.disabled) this.pause();
  }

  /** Ring when `shouldRing`, stop otherwise; idempotent. */
  update(shouldRing) {
    this.ringing = shouldRing;
    if (shouldRing) this.play();
    else this.pause();
  }

  play() {
    if (this.disabled || !this.isMaster || !this.url) return;
    if (!this.audio) {
      this.audio = new Audio(this.url);
      this.audio.loop = true;
    }
    const root = document.documentElement;
    root.dataset.ringing = "true";
    root.dataset.ringtoneUrl = this.url;
    this.audio.play().then(() => {
      if (this.ringing) root.dataset.ringing = "playing"; // the sound is really playing
    }).catch(() => {
      // Autoplay can be refused before the agent interacts with the page; nothing to do.
    });
  }

  pause() {
    delete document.documentElement.dataset.ringing;
    if (this.audio) {
      this.audio.pause();
      this.audio.currentTime = 0;
    }
  }
}
